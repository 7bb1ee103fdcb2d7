"""An output bomb: a small compressed .mha declaring 1000^3 voxels (1 GB once read; the stream holds the first
64 MB, enough for a reader to allocate the whole volume before it notices). The runner must refuse it from its
header, before a reader allocates the volume in the harness's own process. Written in well under a second."""
import sys
import zlib

sys.path.insert(0, "/app")
import mha  # noqa: E402

header, _ = mha.read_header(mha.input_image())
grid = mha.geometry(header)
grid["DimSize"] = "1000 1000 1000"
lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
         "CompressedData = True"] + [f"{key} = {value}" for key, value in grid.items()]
lines += ["ElementType = MET_UCHAR", "ElementDataFile = LOCAL"]
compressor, zeros = zlib.compressobj(1), bytes(2**24)
with open(f"{mha.OUTPUT_FOLDER}/segmentation.mha", "wb") as stream:
    stream.write(("\n".join(lines) + "\n").encode("ascii"))
    written = 0
    while written < 64 * 2**20:
        chunk = zeros
        stream.write(compressor.compress(chunk))
        written += len(chunk)
    stream.write(compressor.flush())
print("wrote a 1000^3 bomb", flush=True)
