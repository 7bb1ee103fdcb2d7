"""Writes a header on the input's grid whose voxels are to be read from a file of the host."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

header, _offset = mha.read_header(mha.input_image())
lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
         "HeaderSize = -1"]
lines += [f"{key} = {value}" for key, value in mha.geometry(header).items()]
lines += ["ElementType = MET_UCHAR", "ElementDataFile = /etc/hostname"]
with open(f"{mha.OUTPUT_FOLDER}/segmentation.mha", "w") as stream:
    stream.write("\n".join(lines) + "\n")
print("wrote a header that points at /etc/hostname")
