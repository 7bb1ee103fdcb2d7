"""Pure-Python MetaImage (.mha) reading and writing for the test algorithm containers.

The base image has no numpy or SimpleITK (and no network to install them), so the test
algorithms read and write the format with the standard library only.
"""

import array
import zlib

_TYPES = {
    "MET_UCHAR": "B", "MET_CHAR": "b", "MET_USHORT": "H", "MET_SHORT": "h",
    "MET_UINT": "I", "MET_INT": "i", "MET_FLOAT": "f", "MET_DOUBLE": "d",
}


def read_header(path):
    """(header dict of strings, byte offset of the voxel data)."""
    header = {}
    with open(path, "rb") as stream:
        while True:
            line = stream.readline()
            if not line:
                raise ValueError(f"{path}: no ElementDataFile line")
            key, _, value = line.decode("ascii").partition("=")
            header[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                return header, stream.tell()


def read(path):
    """(header, flat array of voxel values in x-fastest order)."""
    header, offset = read_header(path)
    with open(path, "rb") as stream:
        stream.seek(offset)
        data = stream.read()
    if header.get("CompressedData", "False") == "True":
        data = zlib.decompress(data)
    values = array.array(_TYPES[header["ElementType"]])
    values.frombytes(data)
    return header, values


def geometry(header):
    """The keys that place the grid in space, copied into an output."""
    return {key: header[key] for key in ("DimSize", "ElementSpacing", "Offset", "TransformMatrix") if key in header}


def size(header):
    return [int(v) for v in header["DimSize"].split()]


def write(path, grid, values, element_type="MET_UCHAR", data_file=None):
    """Write `values` (flat, x fastest) with the geometry `grid` (from geometry()); with `data_file`
    (a name) as a .mhd header at `path` and the voxels in that file beside it."""
    import os

    data = array.array(_TYPES[element_type], values).tobytes()
    lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             "CompressedData = False"]
    lines += [f"{key} = {value}" for key, value in grid.items()]
    lines += [f"ElementType = {element_type}", f"ElementDataFile = {data_file or 'LOCAL'}"]
    with open(path, "wb") as stream:
        stream.write(("\n".join(lines) + "\n").encode("ascii"))
        if data_file is None:
            stream.write(data)
    if data_file is not None:
        with open(os.path.join(os.path.dirname(path), data_file), "wb") as stream:
            stream.write(data)


def input_image():
    """Path of the one input image of this job."""
    import glob

    found = sorted(glob.glob("/input/images/sagittal-spine-mri/*.mha"))
    if len(found) != 1:
        raise SystemExit(f"expected one input image, found {found}")
    return found[0]


OUTPUT_FOLDER = "/output/images/sagittal-spine-mr-segmentation"


def write_zeros(name="segmentation.mha"):
    """A valid (empty) segmentation on the input grid."""
    header, _offset = read_header(input_image())
    n = 1
    for extent in size(header):
        n *= extent
    write(f"{OUTPUT_FOLDER}/{name}", geometry(header), bytes(n))
