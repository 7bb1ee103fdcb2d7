"""The test algorithm's one case: read /input/inputs.json the 2026 way (`socket`), threshold the
input's intensity bands into SPIDER labels, write one .mha to the output socket's folder."""
import json

import mha

# Intensity bands of the synthetic test images -> labels (vertebra L5, spinal canal, disc L5/S1).
BANDS = ((140, 160, 1), (190, 210, 100), (70, 90, 201))


def input_path():
    with open("/input/inputs.json", encoding="utf-8") as stream:
        values = {value["socket"]["slug"]: value for value in json.load(stream)}
    image = values["sagittal-spine-mri"]["image"]
    return f"/input/images/sagittal-spine-mri/{image['name']}"


def segment():
    header, voxels = mha.read(input_path())
    labels = bytearray(len(voxels))
    for index, value in enumerate(voxels):
        for low, high, label in BANDS:
            if low <= value <= high:
                labels[index] = label
                break
    mha.write(f"{mha.OUTPUT_FOLDER}/segmentation.mha", mha.geometry(header), labels)
    print(f"wrote {sum(1 for v in labels if v)} foreground voxels of {len(labels)}", flush=True)
