"""Small synthetic label volumes with uneven spacing, and helpers to write them as .mha files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so that the scoring guard's child processes import scoring_fakes by name

# (z, y, x) spacing in mm: the coarse axis first, two different in-plane spacings.
SPACING_ZYX = (3.0, 0.5, 0.7)
# A flipped, axis-permuted orthonormal direction: scores must not depend on it.
DIRECTION = (0.0, 0.0, -1.0,
             1.0, 0.0, 0.0,
             0.0, -1.0, 0.0)
ORIGIN = (10.0, -20.5, 3.25)


def box_pair(offset_z: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A 4x4x4 voxel cube and the same cube moved `offset_z` voxels along z, in a 10x10x10 grid."""
    reference = np.zeros((10, 10, 10), dtype=bool)
    reference[2:6, 2:6, 2:6] = True
    prediction = np.zeros_like(reference)
    prediction[2 + offset_z:6 + offset_z, 2:6, 2:6] = True
    return reference, prediction


def spine_reference(*, canal: bool = True, discs: bool = True) -> np.ndarray:
    """Three vertebrae (L5, L4, L3), the discs below each of them and a canal, stacked along y.

    Shape (12, 44, 24) voxels (z, y, x); y grows upwards, so L5/S1 comes first.
    """
    mask = np.zeros((12, 44, 24), dtype=np.uint8)
    y = 2
    for level in (1, 2, 3):
        if discs:
            mask[3:9, y:y + 3, 3:13] = labels.disc_value(level)
        y += 3
        mask[2:10, y:y + 8, 2:14] = labels.vertebra_value(level)
        mask[4:8, y + 2:y + 6, 14:20] = labels.vertebra_value(level)  # a posterior process
        y += 8
    if canal:
        mask[4:8, 0:42, 20:23] = labels.SPINAL_CANAL
    return mask


def perturbed(reference: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """A plausible prediction: one structure moved a slice, one grown, one shrunk, some noise."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    prediction = reference.copy()
    l4 = reference == labels.vertebra_value(2)
    prediction[l4] = 0
    prediction[np.roll(l4, 1, axis=0)] = labels.vertebra_value(2)
    disc = reference == labels.disc_value(1)
    prediction[ndimage.binary_dilation(disc) & (prediction == 0)] = labels.disc_value(1)
    l3 = reference == labels.vertebra_value(3)
    prediction[l3 & ~ndimage.binary_erosion(l3)] = 0
    flips = rng.random(reference.shape) < 0.01
    prediction[flips & (reference == 0)] = labels.SPINAL_CANAL
    return prediction


def write_mask(path: Path, array: np.ndarray, *, spacing_zyx=SPACING_ZYX, direction=DIRECTION, origin=ORIGIN,
               pixel_type=None) -> Path:
    """Write a (z, y, x) array as an .mha image on the test grid (spacing given in array order)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    image.SetDirection(direction)
    image.SetOrigin(origin)
    if pixel_type is not None:
        image = sitk.Cast(image, pixel_type)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def spine() -> np.ndarray:
    return spine_reference()


@pytest.fixture
def scoring_folders(tmp_path: Path) -> tuple[Path, Path]:
    """masks/ with four cases and predictions/ holding a perfect, a perturbed, an off-grid and
    an unknown-label prediction, one symbolic link, and no prediction for the last case."""
    reference = spine_reference()
    masks, predictions = tmp_path / "masks", tmp_path / "predictions"
    for name in ("a_perfect", "b_perturbed", "c_offgrid", "d_badlabel", "e_missing", "f_link"):
        write_mask(masks / f"{name}.mha", reference)
    write_mask(predictions / "a_perfect.mha", reference)
    write_mask(predictions / "b_perturbed.mha", perturbed(reference))
    write_mask(predictions / "c_offgrid.mha", reference, spacing_zyx=(3.0, 0.5, 0.75))
    bad = reference.copy()
    bad[0, 0, 0] = 42
    write_mask(predictions / "d_badlabel.mha", bad)
    (predictions / "f_link.mha").symlink_to(predictions / "a_perfect.mha")
    write_mask(predictions / "zz_extra.mha", reference)
    return masks, predictions
