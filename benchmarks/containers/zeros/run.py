"""A do-nothing-but-valid algorithm: an all-background uint8 segmentation on the input's grid.

Reads only the MetaImage header of the input (no voxels), so that a benchmark measures the
harness, not the algorithm. Standard library only.
"""
import glob

GEOMETRY_KEYS = ("NDims", "TransformMatrix", "Offset", "CenterOfRotation", "AnatomicalOrientation",
                 "ElementSpacing", "DimSize")

[image] = glob.glob("/input/images/sagittal-spine-mri/*.mha")
header = {}
with open(image, "rb") as stream:
    for raw in stream:
        key, _, value = raw.decode("ascii", "replace").partition("=")
        key, value = key.strip(), value.strip()
        if key == "ElementDataFile":
            break
        header[key] = value
voxels = 1
for size in header["DimSize"].split():
    voxels *= int(size)
lines = ["ObjectType = Image"] + [f"{k} = {header[k]}" for k in GEOMETRY_KEYS if k in header]
lines += ["BinaryData = True", "BinaryDataByteOrderMSB = False", "CompressedData = False",
          "ElementType = MET_UCHAR", "ElementDataFile = LOCAL"]
with open("/output/images/sagittal-spine-mr-segmentation/segmentation.mha", "wb") as out:
    out.write(("\n".join(lines) + "\n").encode("ascii"))
    out.write(bytes(voxels))
print(f"wrote {voxels} background voxels")
