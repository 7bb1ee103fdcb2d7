"""The well-behaved algorithm, writing its segmentation as a .mhd header and a .raw data file."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

# Intensity bands of the synthetic test images -> labels (vertebra L5, spinal canal, disc L5/S1).
BANDS = ((140, 160, 1), (190, 210, 100), (70, 90, 201))

header, values = mha.read(mha.input_image())
labels = bytearray(len(values))
for index, value in enumerate(values):
    for low, high, label in BANDS:
        if low <= value <= high:
            labels[index] = label
            break
mha.write(f"{mha.OUTPUT_FOLDER}/segmentation.mhd", mha.geometry(header), labels, data_file="segmentation.raw")
print(f"wrote {sum(1 for v in labels if v)} foreground voxels of {len(labels)}")
