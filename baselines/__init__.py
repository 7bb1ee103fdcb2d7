"""SPIDER baseline: MONAI UNETR training, inference and the reference container."""
