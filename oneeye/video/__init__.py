"""Camera video: frame sources, tracking, the per-camera pipeline, labelled test clips."""
