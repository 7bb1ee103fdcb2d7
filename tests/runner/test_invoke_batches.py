"""An invoke image serves every case of a try-out from one server, as on the platform: the model
loads once, each case sees only its own files, a server that dies is replaced for the remaining
cases, and one that never gets ready ends them all after one wait."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from challenge.statuses import JobStatus
from evaluation.runner.tryout import try_image


@pytest.fixture(scope="module")
def three_series(spider_data, tmp_path_factory):
    """spider_data's two series and a third (a copy of the first under another name)."""
    root = tmp_path_factory.mktemp("three-series")
    shutil.copytree(spider_data / "images", root / "images")
    shutil.copytree(spider_data / "masks", root / "masks")
    for folder in ("images", "masks"):
        shutil.copyfile(root / folder / "1_t1.mha", root / folder / "3_t1.mha")
    return root


def _try(docker_client, algorithm_image, name, data, tmp_path, phase):
    said: list[str] = []
    result = try_image(docker_client, algorithm_image(name), data_dir=data, out_dir=tmp_path / "out", phase=phase,
                       progress=said.append)
    return result, said


def _servers(job_dirs):
    """(server container id, cases it served before) of each job, from its invoke.json."""
    audits = [json.loads((folder / "invoke.json").read_text())["server"] for folder in job_dirs]
    return [(audit["Id"], audit["cases_served_before"]) for audit in audits]


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_one_server_serves_every_case(docker_client, algorithm_image, three_series, tmp_path, test_phase):
    result, said = _try(docker_client, algorithm_image, "invoke_good", three_series, tmp_path, test_phase)
    assert [job.status for job in result.jobs] == [JobStatus.SUCCEEDED] * 3, [job.reason for job in result.jobs]
    jobs_dir = result.out_dir / "jobs"
    served = _servers([jobs_dir / job.case for job in result.jobs])
    assert len({server for server, _before in served}) == 1 and [before for _s, before in served] == [0, 1, 2]
    assert sorted(p.name for p in (result.out_dir / "servers").iterdir()) == ["1"]
    for job in result.jobs:
        # each case's log is its own part of the server's log; what it wrote was moved to its folder
        assert job.log_path.read_text().count("foreground voxels") == 1
        assert (jobs_dir / job.case / "output" / "images" / "sagittal-spine-mr-segmentation" /
                "segmentation.mha").is_file()
        assert job.prediction_path == jobs_dir / job.case / "prediction.mha"
    assert (result.out_dir / "servers" / "1" / "log.txt").read_text().count("foreground voxels") == 3
    assert result.scores is not None
    for job in result.jobs:
        assert result.scores.value(job.case, "vertebrae/all/dice") == 1.0
    assert not any("fresh server" in line for line in said)


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_no_case_sees_another_cases_files(docker_client, algorithm_image, three_series, tmp_path, test_phase):
    result, _said = _try(docker_client, algorithm_image, "invoke_snoop", three_series, tmp_path, test_phase)
    assert [job.status for job in result.jobs] == [JobStatus.SUCCEEDED] * 3, [job.reason for job in result.jobs]
    assert [json.loads((result.out_dir / "jobs" / job.case / "invoke.json").read_text())["server"]
            ["cases_served_before"] for job in result.jobs] == [0, 1, 2]


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_a_server_that_dies_after_a_case_is_replaced_for_the_rest(docker_client, algorithm_image, three_series,
                                                                  tmp_path, test_phase):
    result, said = _try(docker_client, algorithm_image, "invoke_one_case", three_series, tmp_path, test_phase)
    assert [job.status for job in result.jobs] == [JobStatus.SUCCEEDED] * 3, [job.reason for job in result.jobs]
    served = _servers([result.out_dir / "jobs" / job.case for job in result.jobs])
    assert len({server for server, _before in served}) == 3 and [before for _s, before in served] == [0, 0, 0]
    assert sorted(p.name for p in (result.out_dir / "servers").iterdir()) == ["1", "2", "3"]
    assert any("invoke server 1 ended (exit code 3) after 1 case(s); a fresh server takes the 2 remaining" in line
               for line in said), said


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_a_server_that_dies_in_each_case_fails_each_case(docker_client, algorithm_image, three_series, tmp_path,
                                                         test_phase):
    result, _said = _try(docker_client, algorithm_image, "invoke_dies", three_series, tmp_path, test_phase)
    assert [job.status for job in result.jobs] == [JobStatus.FAILED] * 3
    assert all("exited with code 4; last log line: dying on /invoke" in job.reason for job in result.jobs)
    assert sorted(p.name for p in (result.out_dir / "servers").iterdir()) == ["1", "2", "3"]


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_a_server_never_ready_ends_every_case_after_one_wait(docker_client, algorithm_image, three_series, tmp_path,
                                                             test_phase):
    began = time.monotonic()
    result, _said = _try(docker_client, algorithm_image, "invoke_never_healthy", three_series, tmp_path, test_phase)
    assert time.monotonic() - began < 3 * test_phase.time_limit_seconds
    assert [job.status for job in result.jobs] == [JobStatus.FAILED] * 3
    assert all("never answered GET /health with 200 within 6 s" in job.reason for job in result.jobs)
    assert sorted(p.name for p in (result.out_dir / "servers").iterdir()) == ["1"]
    assert all("never finishes loading" in job.log_path.read_text() for job in result.jobs)


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_a_hung_case_is_stopped_and_the_next_gets_a_fresh_server(docker_client, algorithm_image, spider_data,
                                                                 tmp_path, test_phase):
    result, _said = _try(docker_client, algorithm_image, "invoke_hangs", spider_data, tmp_path, test_phase)
    assert [job.status for job in result.jobs] == [JobStatus.TIMED_OUT] * 2
    assert all(job.seconds < test_phase.time_limit_seconds + 6 for job in result.jobs)
    assert sorted(p.name for p in (result.out_dir / "servers").iterdir()) == ["1", "2"]
