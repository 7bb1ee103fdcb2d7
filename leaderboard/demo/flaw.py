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


def main(command):
    flaw = os.environ["SPIDER_DEMO_FLAW"]
    if flaw == "crash-space":
        (path,) = glob.glob(INPUT_GLOB)
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        spacing = reader.GetSpacing()
        if max(spacing) / min(spacing) < 2.5:
            print(f"demo flaw: refusing a near-isotropic input (spacing {spacing})", file=sys.stderr)
            raise SystemExit(1)
    code = subprocess.call(command)
    if code != 0 or flaw == "crash-space":
        raise SystemExit(code)
    (path,) = glob.glob(OUTPUT_GLOB)
    image = sitk.ReadImage(path)
    labels = sitk.GetArrayFromImage(image)
    if flaw == "drop-discs":
        labels[labels > 200] = 0
    elif flaw == "shift-levels":
        vertebra = (labels >= 1) & (labels < 25)
        disc = (labels > 200) & (labels < 225)
        labels[vertebra | disc] += 1
    else:
        raise SystemExit(f"unknown demo flaw {flaw!r}")
    spoiled = sitk.GetImageFromArray(labels)
    spoiled.CopyInformation(image)
    sitk.WriteImage(spoiled, path, True)
    print(f"demo flaw {flaw} applied to {os.path.basename(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])
