"""Image classification model families."""
