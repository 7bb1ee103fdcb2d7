"""Looks, at each POST /invoke, for any trace of another case: more than one image or an image it
saw before in /input, anything in /output but the empty socket folder, a file of an earlier case
still readable. Answers 500 (and says what it found on stderr) if it finds one, else segments (201)."""
import os
import sys

sys.path.insert(0, "/app")
import server  # noqa: E402
import threshold  # noqa: E402

SEEN = []  # the input images of the earlier cases, by path
WRITTEN = []  # the outputs it wrote for them


def listing(root):
    found = []
    for folder, _subfolders, files in os.walk(root):
        found += [os.path.join(folder, name) for name in files]
        found += [os.path.join(folder, name) for name in _subfolders]
    return sorted(found)


def invoke():
    problems = []
    images = [path for path in listing("/input") if path.endswith(".mha")]
    if len(images) != 1:
        problems.append(f"/input holds {len(images)} images: {images}")
    problems += [f"an earlier case's image is still there: {path}" for path in SEEN if os.path.exists(path)]
    problems += [f"an earlier case's output is still there: {path}" for path in WRITTEN if os.path.exists(path)]
    extra = [path for path in listing("/output") if path not in ("/output/images",
                                                                 "/output/images/sagittal-spine-mr-segmentation")]
    if extra:
        problems.append(f"/output is not empty: {extra}")
    if problems:
        print("; ".join(problems), file=sys.stderr, flush=True)
        return 500
    SEEN.extend(images)
    threshold.segment()
    WRITTEN.append(f"{threshold.mha.OUTPUT_FOLDER}/segmentation.mha")
    print(f"case {len(SEEN)}: no trace of another case", flush=True)
    return 201


server.serve(invoke=invoke)
