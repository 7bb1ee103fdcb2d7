"""Fixtures of the runner tests: the engine, the offline base image (built once), the test
algorithm images (each built once, on first use), small cases and a phase with small limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from challenge.phases import Phase

CONTAINERS = Path(__file__).parent / "containers"
TEST_TAG_PREFIX = "spider-test/"
# Intensities of the synthetic inputs per label; the `good` container maps these bands back.
INTENSITY = {labels.BACKGROUND: 20, labels.vertebra_value(1): 150, labels.SPINAL_CANAL: 200, labels.disc_value(1): 80}
# Uneven spacing and an axis-permuting direction (a proper rotation): a runner or container that
# assumes an identity grid or mixes (x, y, z) with (z, y, x) fails the geometry check.
SPACING_XYZ = (0.62, 0.55, 3.3)
DIRECTION = (0.0, 0.0, -1.0,
             1.0, 0.0, 0.0,
             0.0, -1.0, 0.0)
ORIGIN = (12.5, -40.25, 7.0)


def mask_array(shape_zyx: tuple[int, int, int]) -> np.ndarray:
    mask = np.zeros(shape_zyx, dtype=np.uint8)
    z, y, x = shape_zyx
    mask[2 : z - 2, 2:10, 3:12] = labels.vertebra_value(1)
    mask[2 : z - 2, 11:14, 3:12] = labels.disc_value(1)
    mask[1 : z - 1, 2 : y - 2, 14:18] = labels.SPINAL_CANAL
    return mask


def write_case(images: Path, masks: Path, name: str, *, shape_zyx: tuple[int, int, int], seed: int) -> None:
    mask = mask_array(shape_zyx)
    intensity = np.vectorize(INTENSITY.get)(mask).astype(np.int16)
    noise = np.random.default_rng(seed).integers(-5, 6, size=mask.shape).astype(np.int16)
    for folder, array, compress in ((images, intensity + noise, True), (masks, mask, True)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(SPACING_XYZ)
        image.SetDirection(DIRECTION)
        image.SetOrigin(ORIGIN)
        sitk.WriteImage(image, str(folder / f"{name}.mha"), compress)


@pytest.fixture(name="mask_array", scope="session")
def _mask_array_fixture():
    """mask_array(shape_zyx) -> a uint8 mask with a vertebra, a disc and the canal."""
    return mask_array


@pytest.fixture(scope="session")
def make_image():
    """make_image(array, spacing=...) -> a SimpleITK image on the tests' rotated, uneven grid."""

    def make(array: np.ndarray, *, spacing=SPACING_XYZ) -> sitk.Image:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing)
        image.SetDirection(DIRECTION)
        image.SetOrigin(ORIGIN)
        return image

    return make


@pytest.fixture(scope="session")
def spider_data(tmp_path_factory) -> Path:
    """A SPIDER-layout folder with two small series (images/ and masks/), different grids."""
    root = tmp_path_factory.mktemp("spider-data")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    write_case(root / "images", root / "masks", "1_t1", shape_zyx=(9, 28, 20), seed=1)
    write_case(root / "images", root / "masks", "2_t2", shape_zyx=(7, 30, 22), seed=2)
    return root


@pytest.fixture(scope="session")
def input_image(spider_data) -> Path:
    return spider_data / "images" / "1_t1.mha"


@pytest.fixture
def test_phase() -> Phase:
    """Small limits so that hostile containers hit them quickly."""
    return Phase(
        name="runner-test",
        description="runner tests",
        time_limit_seconds=6,
        memory_bytes=256 * 1024**2,
        cpus=1.0,
        gpus=0,
        pids_limit=64,
        tmp_bytes=64 * 1024**2,
        output_limit_bytes=32 * 1024**2,
    )


@pytest.fixture(scope="session")
def algorithm_image(docker_client, base_image):
    """algorithm_image(name) -> image id of tests/runner/containers/<name>, built on first use."""
    built: dict[str, str] = {}

    def build(name: str) -> str:
        if name not in built:
            image, _logs = docker_client.images.build(
                path=str(CONTAINERS),
                dockerfile=f"{name}/Dockerfile",
                tag=f"{TEST_TAG_PREFIX}{name}:latest",
                rm=True,
                forcerm=True,
                network_mode="none",
            )
            built[name] = image.id
        return built[name]

    return build
