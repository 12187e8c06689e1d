"""OneEye: self-hosted, real-time face identification for camera video."""

__version__ = "0.1.0"
