"""The edge runtime (``oneeye edge``): camera pipelines on the camera host, sightings and
status over MQTT, the gallery kept in step with the server; and the server's watch on edges."""
