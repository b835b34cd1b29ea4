"""Semantic segmentation families (registration only; no framework import)."""
