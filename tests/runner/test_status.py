"""The closed set of job statuses and how they map to the six reported ones."""

import pytest

from challenge.statuses import ENDED_JOB_STATUSES, REPORTED_STATUSES, JobStatus


def test_every_status_maps_to_a_reported_one():
    for status in ENDED_JOB_STATUSES:
        assert status.reported in REPORTED_STATUSES


def test_reported_statuses_are_the_six_of_jobs_json():
    assert [s.value for s in REPORTED_STATUSES] == [
        "succeeded", "failed", "timed_out", "out_of_memory", "missing_output", "invalid_output",
    ]
    for status in REPORTED_STATUSES:
        assert status.reported is status


def test_internal_statuses_map_to_the_closest_reported_one():
    assert JobStatus.OUTPUT_TOO_LARGE.reported is JobStatus.INVALID_OUTPUT
    assert JobStatus.NOT_STARTED.reported is JobStatus.FAILED


def test_status_is_a_string_enum():
    assert JobStatus("timed_out") is JobStatus.TIMED_OUT
    assert str(JobStatus.SUCCEEDED) == "succeeded"
    assert JobStatus.SUCCEEDED.ok and not JobStatus.FAILED.ok


def test_engine_statuses_are_not_reported():
    assert not JobStatus.PENDING.ended and not JobStatus.RUNNING.ended
    assert set(ENDED_JOB_STATUSES) == set(JobStatus) - {JobStatus.PENDING, JobStatus.RUNNING}
    with pytest.raises(ValueError, match="has not ended"):
        _ = JobStatus.RUNNING.reported
