"""Writes two segmentations."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros("first.mha")
mha.write_zeros("second.mha")
