"""Small SPIDER-layout hidden test sets for the registry and engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from challenge import labels

SPACING_XYZ = (0.7, 0.6, 3.3)
DIRECTION = (0.0, 0.0, 1.0,
             1.0, 0.0, 0.0,
             0.0, 1.0, 0.0)


def case_mask(shape_zyx=(10, 24, 16), *, shift: int = 0) -> np.ndarray:
    """Two vertebrae, the disc between them and the canal behind them (uneven grid)."""
    mask = np.zeros(shape_zyx, dtype=np.uint8)
    mask[1:9, 3 + shift:9 + shift, 2:8] = labels.vertebra_value(1)
    mask[1:9, 10 + shift:12 + shift, 2:8] = labels.disc_value(2)
    mask[1:9, 13 + shift:19 + shift, 2:8] = labels.vertebra_value(2)
    mask[2:8, 3:21, 10:13] = labels.SPINAL_CANAL
    return mask


def write_hidden_set(root: Path, names) -> Path:
    """A SPIDER-layout folder whose images hold the label values themselves (uint8), so that an
    'identity' container that copies its input writes a perfect prediction."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index, name in enumerate(names):
        mask = case_mask(shift=index % 3)
        image = sitk.GetImageFromArray(mask)
        image.SetSpacing(SPACING_XYZ)
        image.SetDirection(DIRECTION)
        image.SetOrigin((1.5 * index, -20.0, 4.0))
        sitk.WriteImage(image, str(root / "images" / f"{name}.mha"), False)
        sitk.WriteImage(image, str(root / "masks" / f"{name}.mha"), True)
    return root


def case_names(count: int) -> list[str]:
    """`count` SPIDER series names over patients 1, 2, ... (t1 and t2 per patient)."""
    names = []
    patient = 1
    while len(names) < count:
        names.append(f"{patient}_t1")
        if len(names) < count:
            names.append(f"{patient}_t2")
        patient += 1
    return names
