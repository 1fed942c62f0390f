"""The liver H&E pipeline: colour-phase labeller, quantification of NAS
features, per-slide quality check, training data preparation, tile
segmenter, steatosis evaluation."""
