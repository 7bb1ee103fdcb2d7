"""The evaluation image end to end: built offline once per session for each profile, run by
`spider gc evaluate-locally` with the platform's flags on `spider try` outputs, and compared with
`spider score` on the same predictions; a missing job output ends with the platform's error line."""

from __future__ import annotations

import json

import pytest

from challenge.cli import main
from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.phases import get_phase
from challenge.synth import write_release
from evaluation.platform.entrypoint import FAILURE_PREFIX
from evaluation.platform.local_run import evaluate_locally, read_try_out, run_evaluation, write_platform_input
from evaluation.platform.predictions import read_predictions
from evaluation.report import metrics_document
from evaluation.score import score_folders

pytestmark = pytest.mark.docker
TAGS = {"spider2024": "spider-test/gc-evaluation-spider2024:latest", "full": "spider-test/gc-evaluation-full:latest"}


@pytest.fixture(scope="session")
def synthetic_release(tmp_path_factory):
    """Three synthetic series (T1, T2, T2 SPACE of one patient) at a coarse voxel scale."""
    root = tmp_path_factory.mktemp("gc-release") / "release"
    write_release(root, cases=3, seed=1, voxel_scale=2.5)
    return root


@pytest.fixture(scope="session")
def evaluation_images(docker_client, base_image, synthetic_release, request):
    """profile -> the evaluation image built for it: spider2024 for the public sanity-check phase with the
    phase's ground truth, full for the hidden final phase with the ground truth baked in. Removed at the end."""
    from evaluation.platform.image import build_evaluation_image, remove_image

    built = {}
    for profile, phase, ground_truth in (("spider2024", "sanity-check", None), ("full", "final", synthetic_release)):
        image = build_evaluation_image(tag=TAGS[profile], phase=get_phase(phase), profile=profile,
                                       ground_truth=ground_truth, client=docker_client)
        request.addfinalizer(lambda image=image: remove_image(docker_client, image))
        print(f"evaluation image {profile}: {image.size_bytes / 1e6:.0f} MB, built in {image.build_seconds:.0f} s")
        built[profile] = image
    return built


def expected_scores(release, try_out, out, profile):
    """What `spider score` writes for the same predictions."""
    return score_folders(release / "masks", try_out / "predictions", out, profile=profile, progress=False)


def changes(perturbed):
    return {"3_t1": perturbed, "3_t2_SPACE": lambda mask: perturbed(perturbed(mask))}


@pytest.mark.timeout(600)
def test_spider2024_columns_equal_spider_score(evaluation_images, synthetic_release, write_try_out, perturbed,
                                               tmp_path, capsys):
    try_out = write_try_out(synthetic_release, tmp_path / "try", changes=changes(perturbed))
    out = tmp_path / "evaluation"
    code = main(["gc", "evaluate-locally", "--image", TAGS["spider2024"], "--predictions-from", str(try_out),
                 "--ground-truth", str(synthetic_release), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    metrics_path = out / "output" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    assert metrics_path.stat().st_uid != 0  # written by the non-root user
    report = expected_scores(synthetic_release, try_out, tmp_path / "score", "spider2024")
    expected = metrics_document(report)
    assert metrics["aggregates"] == expected["aggregates"]
    assert metrics["case"] == expected["case"]  # the sanity-check phase has public data: per-case values shown
    for name, column in SPIDER2024_COLUMNS.items():
        aggregate = report.aggregates[name]
        assert metrics[name]["mean"] == aggregate.mean and metrics[name]["std"] == aggregate.std
        if column.official:
            line = next(line for line in printed.out.splitlines() if line.startswith(f"{name}.mean "))
            assert float(line.split()[1]) == pytest.approx(report.aggregates[name].mean, rel=1e-5)
    assert 0 < metrics["DiceScoreVertebrae"]["mean"] < 1
    assert "profile spider2024, phase sanity-check" in printed.out
    assert sorted(p.name for p in (out / "input").iterdir())[-1] == "predictions.json"
    print(printed.out)


@pytest.mark.timeout(600)
def test_full_profile_with_baked_ground_truth_equals_spider_score(evaluation_images, docker_client, synthetic_release,
                                                                  write_try_out, perturbed, tmp_path):
    try_out = write_try_out(synthetic_release, tmp_path / "try", changes=changes(perturbed))
    result = evaluate_locally(docker_client, image=TAGS["full"], try_out=try_out)
    report = expected_scores(synthetic_release, try_out, tmp_path / "score", "full")
    assert result.document["aggregates"] == metrics_document(report)["aggregates"]
    assert result.document["case"] == {}  # the final phase's test data is hidden: aggregates only
    assert [column.path for column, _ in result.columns][:3] == [
        "aggregates.vertebrae/all/dice.mean", "aggregates.discs/all/dice.mean", "aggregates.spinal_canal/all/dice.mean"]
    for column, value in result.columns:
        assert value == report.aggregates[column.path.split(".")[1]].mean
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes < 8 * 1024**3
    print(f"full profile, 3 series: {result.seconds:.1f} s in the container, "
          f"peak {result.peak_memory_bytes / 2**20:.0f} MiB")


@pytest.mark.timeout(300)
def test_a_missing_job_output_fails_with_a_readable_last_stderr_line(evaluation_images, docker_client,
                                                                     synthetic_release, write_try_out, tmp_path):
    try_out = write_try_out(synthetic_release, tmp_path / "try")
    input_dir = tmp_path / "input"
    write_platform_input(read_try_out(try_out), input_dir, algorithm_image="Algorithm Image test")
    [job] = [job for job in read_predictions(input_dir / "predictions.json") if job.case == "3_t2"]
    job.output_path(input_dir).unlink()
    run = run_evaluation(docker_client, evaluation_images["spider2024"].image_id, input_dir=input_dir,
                         output_dir=tmp_path / "output", tmp_dir=tmp_path / "tmp", ground_truth=synthetic_release)
    assert run.exit_code == 1, run.stderr
    assert run.last_stderr_line == (f"{FAILURE_PREFIX}job {job.pk}: expected its output image at "
                                    f"{job.output_path('/input')}, found an empty folder")
    assert not (tmp_path / "output" / "metrics.json").exists()
