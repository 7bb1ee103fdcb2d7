"""Writes a valid segmentation and makes it unreadable (mode 000)."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
os.chmod(f"{mha.OUTPUT_FOLDER}/segmentation.mha", 0)
print("locked the segmentation", flush=True)
