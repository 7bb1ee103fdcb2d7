"""Shared fixtures: tiny hand-made SPIDER folders and a session-wide synthetic release."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels

# An oblique, axis-permuted grid with uneven spacing: catches any code that assumes an
# identity direction or (x, y, z) == (z, y, x).
TINY_SPACING_XYZ = (3.3, 0.7, 0.6)
TINY_DIRECTION = (0.0, 0.0, 1.0,
                  1.0, 0.0, 0.0,
                  0.0, 1.0, 0.0)
TINY_ORIGIN = (-12.5, 40.0, 7.25)


def tiny_mask_array(shape_zyx=(24, 20, 6)) -> np.ndarray:
    """Along z (index order, bottom first): disc L5/S1, L5, disc L4/L5, L4; the canal behind them."""
    mask = np.zeros(shape_zyx, dtype=np.uint8)
    mask[2:5, 4:12, 1:5] = labels.disc_value(1)
    mask[5:11, 4:12, 1:5] = labels.vertebra_value(1)
    mask[11:13, 4:12, 1:5] = labels.disc_value(2)
    mask[13:19, 4:12, 1:5] = labels.vertebra_value(2)
    mask[:, 13:16, 2:4] = labels.SPINAL_CANAL
    return mask


def to_image(
    array: np.ndarray, *, spacing=TINY_SPACING_XYZ, direction=TINY_DIRECTION, origin=TINY_ORIGIN
) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    image.SetOrigin(origin)
    return image


def write_tiny_release(root: Path, *, names=("1_t1", "1_t2", "3_t2_SPACE")) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    mask = tiny_mask_array()
    rng = np.random.default_rng(0)
    for name in names:
        image = rng.normal(100, 10, mask.shape).astype(np.int16) + mask.astype(np.int16)
        sitk.WriteImage(to_image(image), str(root / "images" / f"{name}.mha"))
        sitk.WriteImage(to_image(mask), str(root / "masks" / f"{name}.mha"))
    with (root / "overview.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["new_file_name", "subset", "Manufacturer", "an_extra_column"])
        for index, name in enumerate(names):
            writer.writerow([name, "training" if index else "validation", "SIEMENS", "x"])
    with (root / "radiological_gradings.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Patient", "IVD label", "Modic", "Pfirrman grade"])
        writer.writerow([1, 1, 0, 3])
        writer.writerow([1, 2, 1, 4])
    return root


@pytest.fixture
def tiny_release(tmp_path: Path) -> Path:
    """A valid three-series release folder with hand-made 6 x 20 x 24 voxel masks."""
    return write_tiny_release(tmp_path / "release")


@pytest.fixture(scope="session")
def docker_client():
    """A client of the Docker engine that `make test` starts; under CI a missing engine fails."""
    from evaluation.runner.docker_runner import connect
    from evaluation.runner.errors import EngineUnavailableError

    try:
        return connect()
    except EngineUnavailableError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {error} (`make system` starts one as root)")


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The offline base image's id, also tagged `python:3.11-slim` when that tag is free.

    Reused when tagged already, else built once per machine (1-2 minutes of debootstrap).
    """
    import docker.errors

    from evaluation.runner import base_image as base

    try:
        image_id = docker_client.images.get(base.BASE_TAG).id
    except docker.errors.ImageNotFound:
        cannot_build = None
        if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
            cannot_build = "no base image and no debootstrap to build it (run `make system`)"
        elif os.geteuid() != 0:
            cannot_build = "no base image, and building it needs root: run `sudo spider images base` once"
        if cannot_build:
            if os.environ.get("CI"):
                pytest.fail(cannot_build)
            pytest.skip(cannot_build)
        image_id = base.build_base_image(docker_client, progress=print).image_id
    base.tag_image(docker_client, image_id, base.SLIM_TAG, keep_foreign=True)
    return image_id
