"""Synthetic scenes with ground truth, and scoring detections against ground truth."""
