"""Fixtures of the baseline tests: small hand-made spine volumes on uneven, permuted grids."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels

# (direction, spacing x y z): an LPS-stored TSE-like series (slices along x) and a PIR-stored
# SPACE-like one; both are sagittal, with uneven spacing.
GRIDS = {
    "LPS": ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (3.3, 0.9, 0.8)),
    "PIR": ((0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0), (0.8, 0.9, 2.2)),
}


def blocky_spine(*, levels: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (LR, SI, AP) = (12, 64, 40) mm-voxel volume: vertebrae and discs stacked from the bottom
    (1 = L5), a canal behind them; intensities per structure plus noise. Returns (image, mask)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((12, 64, 40), dtype=np.uint8)
    top = 60
    shift = int(rng.integers(-2, 3))
    for level in range(1, levels + 1):
        bottom = top - 12
        # Index 1 runs down: the disc (rows top-3 .. top) lies below its vertebra, as in SPIDER.
        mask[2:10, bottom : top - 3, 8 + shift : 24 + shift] = labels.vertebra_value(level)
        mask[3:9, top - 3 : top, 9 + shift : 23 + shift] = labels.disc_value(level)
        top = bottom
    mask[4:8, 4:62, 26 + shift : 31 + shift] = labels.SPINAL_CANAL
    intensity = {0: 0.2, labels.SPINAL_CANAL: 0.9}
    intensity.update({labels.vertebra_value(k): 0.5 for k in range(1, levels + 1)})
    intensity.update({labels.disc_value(k): 0.75 for k in range(1, levels + 1)})
    image = np.vectorize(intensity.get)(mask).astype(np.float32)
    image = image + rng.normal(0, 0.05, image.shape).astype(np.float32)
    return (image * 1000).astype(np.int16), mask


def stored(array_lr_si_ap: np.ndarray, orientation: str, *, origin=(10.0, -20.0, 5.0)) -> sitk.Image:
    """A source array whose axes run (to the right, downwards, backwards) stored as a series of
    `orientation` (a key of GRIDS): the same anatomy, with the axes permuted and flipped."""
    direction, spacing = GRIDS[orientation]
    if orientation == "LPS":
        # sitk (x, y, z) = (L, P, S), so the array (z, y, x) must run (up, back, left)
        array = np.transpose(array_lr_si_ap[::-1, ::-1, :], (1, 2, 0))
    else:
        # sitk (x, y, z) = (P, I, R), so the array (z, y, x) runs (right, down, back): the source
        array = array_lr_si_ap
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    image.SetOrigin(origin)
    return image


def write_blocky_release(root: Path, *, patients: int = 4, validation: int = 1, levels: int = 3) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for patient in range(1, patients + 1):
        image, mask = blocky_spine(levels=levels, seed=patient)
        orientation = "LPS" if patient % 2 else "PIR"
        name = f"{patient}_t2"
        sitk.WriteImage(stored(image, orientation), str(root / "images" / f"{name}.mha"))
        sitk.WriteImage(stored(mask, orientation), str(root / "masks" / f"{name}.mha"))
        rows.append([name, "validation" if patient > patients - validation else "training"])
    with (root / "overview.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["new_file_name", "subset"])
        writer.writerows(rows)
    return root


@pytest.fixture
def blocky_release(tmp_path: Path) -> Path:
    return write_blocky_release(tmp_path / "release")


@pytest.fixture(scope="session")
def spine() -> SimpleNamespace:
    """spine.volume(levels=, seed=) -> (image, mask) arrays running (right, down, back);
    spine.stored(array, "LPS" | "PIR") -> that array as a SimpleITK series of that orientation."""
    return SimpleNamespace(volume=blocky_spine, stored=stored)


# --- the smoke run, shared by the tests of training, export, prediction and the container ------

SMOKE_CASES = 12  # synthetic series; about one patient in five is in the validation subset
SMOKE_SEED = 7
SMOKE_VOXEL_SCALE = 2.0  # half the matrix of real series: quicker to write, cache and infer
# A third of the shipped smoke run (900, what `make demo` trains): enough to show learning,
# levels and the container; the shipped length is measured by the demo.
SMOKE_ITERATIONS = 300


@pytest.fixture(scope="session")
def synthetic_release(tmp_path_factory) -> Path:
    """A synthetic release in the SPIDER layout (images/, masks/, overview.csv with `subset`)."""
    from challenge.synth import write_release

    root = tmp_path_factory.mktemp("baseline-data") / "release"
    write_release(root, cases=SMOKE_CASES, seed=SMOKE_SEED, voxel_scale=SMOKE_VOXEL_SCALE)
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, synthetic_release):
    """The smoke configuration trained once per session (a few CPU minutes): (run folder, result)."""
    from baselines.config import load_config, smoke_config_path
    from baselines.train import train

    run_dir = tmp_path_factory.mktemp("baseline-smoke") / "run"
    started = time.perf_counter()
    config = load_config(base=smoke_config_path()).with_max_iterations(SMOKE_ITERATIONS)
    result = train(synthetic_release, run_dir, config=config, progress=False,
                   log=lambda message: print(message))
    print(f"smoke training: {time.perf_counter() - started:.0f} s, best mean Dice {result.best_mean_dice:.3f}")
    return run_dir, result


@pytest.fixture(scope="session")
def validation_images(tmp_path_factory, synthetic_release) -> Path:
    """The validation series of the synthetic release as a folder of images and masks."""
    import shutil

    from baselines.data import list_cases

    folder = tmp_path_factory.mktemp("baseline-validation")
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    for case in list_cases(synthetic_release):
        if case.subset == "validation":
            shutil.copy2(case.image_path, folder / "images")
            shutil.copy2(case.mask_path, folder / "masks")
    return folder
