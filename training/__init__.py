"""Training: datasets, models (LUV-Net and baselines), training loop and evaluation."""
