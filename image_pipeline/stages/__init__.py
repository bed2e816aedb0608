"""The pipeline's stages: receiving, analysis, alerting, thumbnails. Each consuming stage is a pure step."""
