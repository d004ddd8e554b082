"""Training data: the clip table (manifest + roles + consensus labels), the uint8 clip dataset, batch
transforms (resize, normalise, clip-consistent augmentation) and the padding collate."""
