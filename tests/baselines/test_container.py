"""The reference container: built offline from the smoke run, run through `spider try`."""

from __future__ import annotations

import json

import pytest
import SimpleITK as sitk

from challenge import contract
from challenge.cli import main as spider
from challenge.geometry import Geometry

pytestmark = pytest.mark.docker

# Measured: the smoke model (classes by group, 300 iterations, levels counted) scored a mean
# Dice of 0.64 (vertebrae), 0.77 (discs) and 0.86 (canal) on the validation series (mean 0.76;
# chance is near 0). Training is deterministic on a CPU; the margin is for other CPUs and
# library versions.
MIN_MEAN_FOREGROUND_DICE = 0.4
TAG = "spider-test/baseline-smoke:latest"


@pytest.fixture(scope="session")
def smoke_image(smoke_run, base_image, docker_client):
    from baselines.container.build import build_container

    run_dir, _ = smoke_run
    return build_container(run_dir, tag=TAG, client=docker_client)


@pytest.mark.timeout(900)
def test_container_records_its_model_and_stays_lean(smoke_image, smoke_run, docker_client):
    run_dir, _ = smoke_run
    spec = json.loads((run_dir / "export" / "inference.json").read_text())
    assert smoke_image.model_sha256 == spec["model_sha256"]
    image = docker_client.images.get(TAG)
    assert image.labels["org.spider-harness.baseline.model-sha256"] == spec["model_sha256"]
    recorded = json.loads((run_dir / "container.json").read_text())
    assert recorded["image_id"] == image.id
    assert smoke_image.size_bytes < 1_000_000_000  # no PyTorch inside: onnxruntime, numpy, SimpleITK
    print(f"reference container: {smoke_image.size_bytes / 1e6:.0f} MB")


@pytest.mark.timeout(900)
def test_container_passes_spider_try_with_exact_geometry(smoke_image, validation_images, tmp_path):
    out = tmp_path / "try"
    code = spider(["try", TAG, "--data", str(validation_images), "--out", str(out), "--phase", "sanity-check"])
    assert code == 0, (out / "jobs.json").read_text() if (out / "jobs.json").exists() else "no jobs.json"
    jobs = json.loads((out / "jobs.json").read_text())
    for image_path in sorted((validation_images / "images").glob("*.mha")):
        case = image_path.name[: -len(".mha")]
        prediction = out / "predictions" / f"{case}.mha"
        assert Geometry.of(sitk.ReadImage(str(prediction))) == Geometry.of(sitk.ReadImage(str(image_path)))
    aggregates = json.loads((out / "metrics.json").read_text())["aggregates"]
    means = {group: aggregates[f"{group}/all/dice"]["mean"] for group in ("vertebrae", "discs", "spinal_canal")}
    seconds = [job.get("seconds") for job in (jobs if isinstance(jobs, list) else jobs.get("jobs", []))]
    print(f"spider try, mean Dice: {json.dumps(means)}; seconds per case: {seconds}")
    assert sum(means.values()) / len(means) > MIN_MEAN_FOREGROUND_DICE, means


@pytest.mark.timeout(300)
def test_container_explains_an_input_that_breaks_the_contract(smoke_image, docker_client, tmp_path):
    empty_input = tmp_path / "input"
    (empty_input / contract.INPUT_SOCKET.relative_path).mkdir(parents=True)
    (empty_input / contract.INPUT_SOCKET.relative_path / "notes.txt").write_text("no image here")
    container = docker_client.containers.run(
        TAG, detach=True, network_mode="none", read_only=True, tmpfs={"/tmp": "size=64m"},
        volumes={str(empty_input): {"bind": "/input", "mode": "ro"}}, user="65534:65534",
    )
    try:
        exit_code = container.wait(timeout=120)["StatusCode"]
        log = container.logs().decode()
    finally:
        container.remove(force=True)
    assert exit_code == 2, log
    assert "expected exactly one .mha image" in log and "notes.txt" in log
    assert contract.INPUT_SOCKET.slug in log
