"""Training: `luskit train --model M --fold K` (params, loop, resume, thresholds, DDP, predictions)."""
