"""Writes its (valid) segmentation under a file name that is not UTF-8."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
folder = os.fsencode(mha.OUTPUT_FOLDER)
os.rename(os.path.join(folder, b"segmentation.mha"), os.path.join(folder, b"seg\xff\xfe.mha"))
print("renamed the segmentation to a name that is not UTF-8")
