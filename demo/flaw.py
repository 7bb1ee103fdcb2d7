"""Entrypoint wrapper of the demo's deliberately flawed algorithms (copied into their images).

Runs the reference algorithm's own command, then spoils its output in one declared way, so
that the leaderboard has something to tell apart. Flaws (env SPIDER_DEMO_FLAW):
  drop-discs     remove every disc label (201-225) from the segmentation
  shift-levels   name every vertebra and disc one level too high (L5 -> L4, L5/S1 -> L4/L5)
  crash-space    exit 1 without output on near-isotropic (T2 SPACE-like) inputs
"""

import glob
import os
import subprocess
import sys

import numpy as np
import SimpleITK as sitk

OUTPUT_GLOB = "/output/images/sagittal-spine-mr-segmentation/*.mha"
INPUT_GLOB = "/input/images/sagittal-spine-mri/*.mha"


FLAWS = ("drop-discs", "shift-levels", "crash-space")


def refuses(flaw, spacing):
    """Whether the flawed algorithm crashes on an input of this voxel spacing."""
    return flaw == "crash-space" and max(spacing) / min(spacing) < 2.5


def spoil(labels, flaw):
    """The reference's segmentation (a label array) with the flaw applied; a new array."""
    labels = np.array(labels, copy=True)
    if flaw == "drop-discs":
        labels[labels > 200] = 0
    elif flaw == "shift-levels":
        vertebra = (labels >= 1) & (labels < 25)
        partial = (labels > 100) & (labels < 125)  # scored as vertebra k: shifted with them
        disc = (labels > 200) & (labels < 225)
        labels[vertebra | partial | disc] += 1
    elif flaw != "crash-space":
        raise ValueError(f"unknown demo flaw {flaw!r}, expected one of {FLAWS}")
    return labels


def main(command):
    flaw = os.environ["SPIDER_DEMO_FLAW"]
    if flaw not in FLAWS:
        raise SystemExit(f"unknown demo flaw {flaw!r}, expected one of {FLAWS}")
    (path,) = glob.glob(INPUT_GLOB)
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    if refuses(flaw, reader.GetSpacing()):
        print(f"demo flaw: refusing a near-isotropic input (spacing {reader.GetSpacing()})", file=sys.stderr)
        raise SystemExit(1)
    code = subprocess.call(command)
    if code != 0 or flaw == "crash-space":
        raise SystemExit(code)
    (path,) = glob.glob(OUTPUT_GLOB)
    image = sitk.ReadImage(path)
    spoiled = sitk.GetImageFromArray(spoil(sitk.GetArrayFromImage(image), flaw))
    spoiled.CopyInformation(image)
    sitk.WriteImage(spoiled, path, True)
    print(f"demo flaw {flaw} applied to {os.path.basename(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])
