"""Writes a segmentation with the input's size but another spacing."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

header, _ = mha.read_header(mha.input_image())
grid = mha.geometry(header)
grid["ElementSpacing"] = "1 1 1"
n = 1
for extent in mha.size(header):
    n *= extent
mha.write(f"{mha.OUTPUT_FOLDER}/segmentation.mha", grid, bytes(n))
