"""Labeling: Label Studio workflow, annotation parsing, agreement, consensus and the review app."""
