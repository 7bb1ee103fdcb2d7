"""predictions.json as the platform writes it: both socket spellings, both duration forms, and every way
it can be wrong, each refused with what was expected and what was found."""

from __future__ import annotations

import copy
import json
import re

import pytest

from evaluation.platform.errors import PredictionsFileError
from evaluation.platform.predictions import (
    Job,
    format_duration,
    job_entry,
    parse_duration,
    parse_predictions,
    read_predictions,
)

JOB_PK = "3f0c1a7e-0000-4000-8000-000000000001"
OUTPUT_PK = "e5f6a7b8-0000-4000-8000-000000000002"
SOCKET_FOLDER = "images/sagittal-spine-mr-segmentation"
PLATFORM_KEYS = ["algorithm_image", "api_url", "exec_duration", "hanging_protocol", "inputs", "invoke_duration",
                 "optional_hanging_protocols", "outputs", "pk", "status", "url", "view_content"]


def entry(**changes) -> dict:
    """One job as the platform lists it (../shared/GRAND-CHALLENGE.md), with `changes` applied."""
    document = job_entry(pk=JOB_PK, input_image_pk="a1b2c3d4-0000-4000-8000-000000000003",
                         input_image_name="1_t2.mha", output_image_pk=OUTPUT_PK, exec_seconds=133,
                         algorithm_image="Algorithm Image 1b2c3d4e (SHA256: 9f8e7d6c)")
    document.update(changes)
    return document


def test_the_written_entry_has_the_platforms_shape():
    document = entry()
    assert sorted(document) == PLATFORM_KEYS
    assert document["exec_duration"] == "P0DT00H02M13S" and document["invoke_duration"] is None
    for key in ("inputs", "outputs"):
        [value] = document[key]
        assert value["socket"] == value["interface"]
        assert sorted(value) == ["file", "image", "interface", "pk", "socket", "value"]
        assert isinstance(value["pk"], int) and value["value"] is None and value["file"] is None
    assert document["inputs"][0]["socket"]["slug"] == "sagittal-spine-mri"
    assert document["outputs"][0]["socket"]["relative_path"] == "images/sagittal-spine-mr-segmentation"


@pytest.mark.parametrize("keep", ["socket", "interface", "both"])
def test_either_socket_spelling_gives_the_same_job(keep):
    document = entry()
    for key in ("inputs", "outputs"):
        for value in document[key]:
            if keep != "both":
                del value["interface" if keep == "socket" else "socket"]
    [job] = parse_predictions([document])
    assert job == Job(pk=JOB_PK, input_image_name="1_t2.mha", output_relative_path=SOCKET_FOLDER,
                      output_image_pk=OUTPUT_PK, exec_duration_s=133.0)
    assert job.case == "1_t2"
    assert str(job.output_path("/input")) == f"/input/{JOB_PK}/output/{SOCKET_FOLDER}/{OUTPUT_PK}.mha"


@pytest.mark.parametrize(("text", "seconds"), [
    ("P0DT00H02M13S", 133.0),        # the platform's long form
    ("PT22M17S", 1337.0),            # forge's stubs
    ("P1DT1H", 90000.0),
    ("PT0.5S", 0.5),
    ("P0DT00H00M01.250000S", 1.25),  # Django with microseconds
    (None, None),
])
def test_both_duration_forms_and_null_are_read(text, seconds):
    assert parse_duration(text) == seconds
    [job] = parse_predictions([entry(exec_duration=None, invoke_duration=text)])
    assert job.invoke_duration_s == seconds and job.seconds == seconds


@pytest.mark.parametrize("text", ["22 minutes", "P", "PT", "T22M", 133, "PT-5S"])
def test_a_malformed_duration_is_refused_with_what_was_expected(text):
    with pytest.raises(PredictionsFileError, match=r"exec_duration: expected an ISO 8601 duration such as "
                                                  r"'P0DT00H02M13S' or 'PT22M17S', or null, found"):
        parse_predictions([entry(exec_duration=text)])


@pytest.mark.parametrize("seconds", [0, 133, 1337.25, 90061])
def test_written_durations_read_back(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def _without_sockets(document: dict) -> dict:
    for value in document["outputs"]:
        del value["socket"], value["interface"]
    return document


@pytest.mark.parametrize(("document", "expected"), [
    ({"pk": JOB_PK}, "expected a list of jobs, found an object"),
    ([], "expected at least one job, found an empty list"),
    (["job"], "job 0: expected an object, found text"),
    ([entry(pk="../etc")], "job 0: pk: expected a name of letters, digits"),
    ([entry(status="Failed")], f"job {JOB_PK}: expected status 'Succeeded'"),
    ([_without_sockets(entry())], "outputs[0]: expected the socket under 'socket' or 'interface', found neither"),
    ([entry(inputs=[])], "expected one image value of the socket 'sagittal-spine-mri' under 'inputs', found "
                         "sockets []"),
    ([entry(), entry(pk="another-job")], "expected one job per case, found jobs"),
    ([entry(), entry()], f"expected each job once, found job {JOB_PK} twice"),
])
def test_a_malformed_job_list_is_refused_with_what_was_expected(document, expected):
    with pytest.raises(PredictionsFileError, match=re.escape(expected)):
        parse_predictions(document)


def test_an_unknown_output_path_or_missing_input_name_is_refused():
    escaping = copy.deepcopy(entry())
    escaping["outputs"][0]["socket"]["relative_path"] = "../../etc"
    escaping["outputs"][0]["interface"]["relative_path"] = "../../etc"
    with pytest.raises(PredictionsFileError, match="relative_path .*found '../../etc'"):
        parse_predictions([escaping])
    nameless = copy.deepcopy(entry())
    nameless["inputs"][0]["image"]["name"] = ""
    with pytest.raises(PredictionsFileError, match=re.escape("expected the input image's file name under inputs[]")):
        parse_predictions([nameless])


def test_the_file_itself_must_exist_and_be_json(tmp_path):
    with pytest.raises(PredictionsFileError, match="expected the platform's list of jobs at .*, found no such file"):
        read_predictions(tmp_path / "predictions.json")
    (tmp_path / "predictions.json").write_text("[{", encoding="utf-8")
    with pytest.raises(PredictionsFileError, match="predictions.json: expected JSON, found text that is not"):
        read_predictions(tmp_path / "predictions.json")
    (tmp_path / "predictions.json").write_text(json.dumps([entry()]), encoding="utf-8")
    assert [job.case for job in read_predictions(tmp_path / "predictions.json")] == ["1_t2"]
