"""`spider try`: the well-behaved algorithm end to end (tag and `docker save` tarball), a failing
one with the local time-limit override, and the checks on arguments."""

from __future__ import annotations

import json
import shutil

import pytest

from challenge.cli import main
from evaluation.runner.errors import ImageNotFoundError, RunnerError
from evaluation.runner.tryout import fit_to_engine, list_series, resolve_image, try_image

JOB_KEYS = ["case", "exit_code", "log", "reason", "seconds", "status"]


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_spider_try_runs_and_scores_a_well_behaved_algorithm(algorithm_image, spider_data, tmp_path, capsys):
    algorithm_image("good")
    out = tmp_path / "out"
    code = main(["try", "spider-test/good:latest", "--data", str(spider_data), "--out", str(out),
                 "--phase", "sanity-check", "--time-limit", "60", "--memory", "512m"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    jobs = json.loads((out / "jobs.json").read_text())
    assert [job["case"] for job in jobs] == ["1_t1", "2_t2"]
    for job in jobs:
        assert sorted(job) == JOB_KEYS
        assert job["status"] == "succeeded" and job["exit_code"] == 0
        assert job["log"] == str(out / "jobs" / job["case"] / "log.txt")
        assert "foreground voxels" in (out / "jobs" / job["case"] / "log.txt").read_text()
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["1_t1.mha", "2_t2.mha"]
    metrics = json.loads((out / "metrics.json").read_text())
    for case in ("1_t1", "2_t2"):
        assert metrics["case"][case]["status"] == "scored"
        for group in ("vertebrae", "discs", "spinal_canal"):
            assert metrics["case"][case]["metrics"][f"{group}/all/dice"] == 1.0
    assert (out / "cases.csv").is_file()
    lines = printed.splitlines()
    assert lines[0].split() == [
        "case", "status", "seconds", "peak", "memory", "Dice", "vertebrae", "Dice", "discs", "Dice", "spinal_canal"
    ]
    assert lines[1].split()[:2] == ["1_t1", "succeeded"] and lines[1].split()[-3:] == ["1.000"] * 3
    assert f"logs: {out / 'jobs'}/<case>/log.txt" in printed
    assert "2 of 2 cases succeeded under phase sanity-check: 60 s per case, 512m memory" in printed


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_spider_try_takes_a_docker_save_tarball(docker_client, algorithm_image, spider_data, tmp_path, test_phase):
    image_id = algorithm_image("good")
    tarball = tmp_path / "algorithm.tar"
    with open(tarball, "wb") as stream:
        for chunk in docker_client.images.get(image_id).save(named=True):
            stream.write(chunk)
    assert resolve_image(docker_client, str(tarball)) == image_id
    result = try_image(docker_client, str(tarball), data_dir=spider_data, out_dir=tmp_path / "out", phase=test_phase)
    assert result.image_id == image_id
    assert result.all_succeeded


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_spider_try_reports_failures_and_scores_them_as_missing(algorithm_image, spider_data, tmp_path, capsys):
    algorithm_image("sleeper")
    out = tmp_path / "out"
    code = main(["try", "spider-test/sleeper:latest", "--data", str(spider_data), "--out", str(out),
                 "--phase", "sanity-check", "--time-limit", "2", "--memory", "256m"])
    printed = capsys.readouterr().out
    assert code == 1
    jobs = json.loads((out / "jobs.json").read_text())
    assert [job["status"] for job in jobs] == ["timed_out", "timed_out"]
    assert all(job["exit_code"] == 137 and 2 <= job["seconds"] < 10 for job in jobs)
    assert "time limit of 2 s" in jobs[0]["reason"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["case"]["1_t1"]["status"] == "missing"
    assert "timed_out" in metrics["case"]["1_t1"]["reason"]
    assert metrics["case"]["1_t1"]["metrics"]["vertebrae/all/dice"] == 0.0
    assert "1_t1: timed_out: did not finish within the time limit of 2 s" in printed
    # A second try-out into the same OUT replaces the first one's files.
    algorithm_image("nooutput")
    assert main(
        ["try", "spider-test/nooutput:latest", "--data", str(spider_data), "--out", str(out), "--phase", "sanity-check"]
    ) == 1
    capsys.readouterr()
    assert [job["status"] for job in json.loads((out / "jobs.json").read_text())] == ["missing_output"] * 2


@pytest.mark.docker
def test_unknown_images_and_bad_tarballs_are_refused(docker_client, tmp_path):
    with pytest.raises(ImageNotFoundError, match="no local image 'spider-test/absent:1'"):
        resolve_image(docker_client, "spider-test/absent:1")
    not_a_tar = tmp_path / "image.tar"
    not_a_tar.write_text("hello")
    with pytest.raises(ImageNotFoundError, match="not a tar archive"):
        resolve_image(docker_client, str(not_a_tar))


def test_out_must_be_empty_or_an_earlier_try_out(spider_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    with pytest.raises(RunnerError, match="not empty and holds no earlier try-out"):
        try_image(None, "any", data_dir=spider_data, out_dir=out, phase=None)
    assert (out / "thesis.tex").exists()


def test_series_are_listed_from_the_release_layout(spider_data, tmp_path):
    assert [(s.name, s.image_path.name, s.mask_path.name) for s in list_series(spider_data)] == [
        ("1_t1", "1_t1.mha", "1_t1.mha"), ("2_t2", "2_t2.mha", "2_t2.mha")]
    images_only = tmp_path / "images-only"
    shutil.copytree(spider_data / "images", images_only / "images")
    assert [s.mask_path for s in list_series(images_only)] == [None, None]


class _Engine:
    def __init__(self, cpus: int):
        self._cpus = cpus

    def info(self) -> dict:
        return {"NCPU": self._cpus}


def test_the_cpu_quota_is_cut_to_the_engine_with_a_note(test_phase):
    notes = []
    four = test_phase.__class__(**{**test_phase.__dict__, "cpus": 4.0})
    fitted = fit_to_engine(_Engine(2), four, progress=notes.append)
    assert fitted.cpus == 2.0 and fitted.memory_bytes == four.memory_bytes
    assert notes == ["note: phase 'runner-test' grants 4 CPUs per case, this engine has 2: jobs run with 2 here "
                     "(slower than on the organizer's machines)"]
    assert fit_to_engine(_Engine(8), four, progress=notes.append) is four
    assert len(notes) == 1


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_spider_try_takes_relative_paths(algorithm_image, spider_data, tmp_path, monkeypatch, capsys):
    """The engine mounts absolute paths only: relative --data and --out are resolved first."""
    algorithm_image("good")
    shutil.copytree(spider_data, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    code = main(["try", "spider-test/good:latest", "--data", "data", "--out", "out",
                 "--phase", "sanity-check", "--time-limit", "60", "--memory", "512m"])
    assert code == 0, capsys.readouterr()
    jobs = json.loads((tmp_path / "out" / "jobs.json").read_text())
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"]


@pytest.mark.docker
@pytest.mark.timeout(60)
def test_a_try_out_that_failed_before_its_first_job_does_not_block_the_next(docker_client, spider_data, tmp_path,
                                                                            test_phase):
    out = tmp_path / "out"
    (out / "predictions").mkdir(parents=True)  # what a try-out leaves when it stops before its first job
    (out / "jobs").mkdir()
    with pytest.raises(ImageNotFoundError):  # past the folder check: the next try-out is not refused
        try_image(docker_client, "spider-test/absent:1", data_dir=spider_data, out_dir=out, phase=test_phase)
