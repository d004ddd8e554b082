"""luskit: lung-ultrasound video curation, labelling, training and evaluation (thin shared core)."""

__version__ = "0.1.0"
