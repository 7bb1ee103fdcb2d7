"""A well-behaved invoke server: 503 on /health while it "loads" (1 s), then 200; each POST /invoke
reads /input/inputs.json the 2026 way and thresholds the input into SPIDER labels, then answers 201."""
import json
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402
import server  # noqa: E402

# Intensity bands of the synthetic test images -> labels (vertebra L5, spinal canal, disc L5/S1).
BANDS = ((140, 160, 1), (190, 210, 100), (70, 90, 201))


def invoke():
    with open("/input/inputs.json", encoding="utf-8") as stream:
        values = {value["socket"]["slug"]: value for value in json.load(stream)}
    image = values["sagittal-spine-mri"]["image"]
    path = f"/input/images/sagittal-spine-mri/{image['name']}"
    header, voxels = mha.read(path)
    labels = bytearray(len(voxels))
    for index, value in enumerate(voxels):
        for low, high, label in BANDS:
            if low <= value <= high:
                labels[index] = label
                break
    mha.write(f"{mha.OUTPUT_FOLDER}/segmentation.mha", mha.geometry(header), labels)
    print(f"wrote {sum(1 for v in labels if v)} foreground voxels of {len(labels)}", flush=True)
    return 201


server.serve(health=lambda: 200 if server.since_start() >= 1.0 else 503, invoke=invoke)
