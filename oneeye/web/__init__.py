"""The web server: JSON API under /api/v1, the WebSocket, and the dashboard pages."""
