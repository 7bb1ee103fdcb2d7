"""Writes its labels as 32-bit floats."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

header, _ = mha.read_header(mha.input_image())
n = 1
for extent in mha.size(header):
    n *= extent
mha.write(f"{mha.OUTPUT_FOLDER}/segmentation.mha", mha.geometry(header), [100.0] * n, "MET_FLOAT")
