"""The synthetic release folder: layout, CSV files, patients, determinism, folder safety."""

from __future__ import annotations

import ast
import csv
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from challenge.synth import OutputFolderError, SynthError
from challenge.synth.release import GRADING_COLUMNS, MARKER, plan_release, write_release

NAME = re.compile(r"^(?P<patient>[1-9][0-9]*)_(?P<sequence>t1|t2|t2_SPACE)\.mha$")
REQUIRED_OVERVIEW = (
    "new_file_name", "patient_id", "sequence", "subset", "sex", "num_vertebrae", "num_discs", "Manufacturer",
    "MagneticFieldStrength", "SliceThickness", "PixelSpacing", "synthetic", "generator",
)  # fmt: skip


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_matches_the_spider_release(release):
    images = sorted(p.name for p in (release / "images").iterdir())
    masks = sorted(p.name for p in (release / "masks").iterdir())
    assert len(images) == 6 and images == masks
    assert all(NAME.match(name) for name in images)
    assert sorted(p.name for p in release.iterdir()) == [
        "SYNTHETIC.txt", "images", "masks", "overview.csv", "radiological_gradings.csv",
    ]  # fmt: skip
    assert (release / "SYNTHETIC.txt").read_text(encoding="utf-8").splitlines()[0] == MARKER
    for name in images:
        image = sitk.ReadImage(str(release / "images" / name))
        mask = sitk.ReadImage(str(release / "masks" / name))
        assert image.GetSize() == mask.GetSize()
        assert image.GetSpacing() == pytest.approx(mask.GetSpacing())
        assert image.GetOrigin() == pytest.approx(mask.GetOrigin())
        assert image.GetDirection() == pytest.approx(mask.GetDirection())
        assert image.GetMetaData("Synthetic") == "true"


def test_overview_has_one_row_per_series_with_the_spider_columns(release):
    rows = _read_csv(release / "overview.csv")
    assert set(REQUIRED_OVERVIEW) <= set(rows[0])
    assert sorted(row["new_file_name"] + ".mha" for row in rows) == sorted(
        p.name for p in (release / "images").iterdir()
    )
    by_patient = defaultdict(list)
    for row in rows:
        assert row["new_file_name"] == f"{row['patient_id']}_{row['sequence']}"
        assert row["synthetic"] == "true" and "seed 1" in row["generator"]
        assert row["subset"] in ("training", "validation")
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(release / "masks" / f"{row['new_file_name']}.mha")))
        values = set(np.unique(mask).tolist())
        groups = {v: labels.group_of(v) for v in values if v}
        vertebrae = {v for v, g in groups.items() if g in (labels.Group.VERTEBRAE, labels.Group.PARTIAL_VERTEBRAE)}
        discs = {v for v, g in groups.items() if g is labels.Group.DISCS}
        assert int(row["num_vertebrae"]) == len(vertebrae)
        assert int(row["num_discs"]) == len(discs)
        by_patient[row["patient_id"]].append(row)
    assert len(by_patient) >= 2
    subsets = set()
    for patient_rows in by_patient.values():
        assert 1 <= len(patient_rows) <= 3
        assert len({r["subset"] for r in patient_rows}) == 1, "the split is per patient"
        assert len({(r["sex"], r["age"], r["Manufacturer"]) for r in patient_rows}) == 1
        subsets.add(patient_rows[0]["subset"])
    assert subsets == {"training", "validation"}


def test_gradings_list_every_visible_disc_of_each_patient(release):
    rows = _read_csv(release / "radiological_gradings.csv")
    assert tuple(rows[0]) == GRADING_COLUMNS
    expected = set()
    for path in (release / "masks").iterdir():
        patient = NAME.match(path.name)["patient"]
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        expected |= {(patient, v - labels.DISC_OFFSET) for v in np.unique(mask).tolist() if v > labels.DISC_OFFSET}
    found = [(row["Patient"], int(row["IVD label"])) for row in rows]
    assert len(found) == len(set(found)) and set(found) == expected
    for row in rows:
        grade = int(row["Pfirrman grade"])
        assert 1 <= grade <= 5
        assert row["Disc narrowing"] == ("1" if grade >= 4 else "0")
        assert int(row["Modic"]) in (0, 1, 2, 3)
        if row["Modic"] != "0":
            assert "1" in (row["UP endplate"], row["LOW endplate"])
        for column in GRADING_COLUMNS[3:8]:
            assert row[column] in ("0", "1")


def test_patients_have_gaps_in_their_ids_a_third_have_space_and_a_fifth_validate():
    plan = plan_release(cases=300, seed=4, sequences=("t1", "t2", "t2_SPACE"))
    assert len(plan) == 300
    patients = defaultdict(set)
    subsets = {}
    for item in plan:
        patients[item.patient_id].add(item.sequence)
        subsets[item.patient_id] = item.subset
    ids = sorted(patients)
    assert ids[0] >= 1 and len(ids) < ids[-1] - ids[0] + 1, "ids leave gaps like the real release"
    with_space = sum("t2_SPACE" in s for s in patients.values()) / len(patients)
    assert 0.2 <= with_space <= 0.45
    validation = sum(s == "validation" for s in subsets.values()) / len(subsets)
    assert 0.15 <= validation <= 0.25
    assert all(1 <= len(s) <= 3 for s in patients.values())


def test_sequences_can_be_restricted(tmp_path):
    paths = write_release(tmp_path / "t2only", cases=3, seed=2, voxel_scale=4.0, sequences=["t2"])
    assert len(paths) == 3 and all(p.name.endswith("_t2.mha") for p in paths)
    assert len({p.name for p in paths}) == 3


def test_same_arguments_give_byte_identical_folders(tmp_path):
    first = tmp_path / "first"
    second = tmp_path / "second"
    write_release(first, cases=4, seed=9, voxel_scale=3.0)
    write_release(second, cases=4, seed=9, voxel_scale=3.0)
    assert _files(first) == _files(second)
    write_release(second, cases=4, seed=9, voxel_scale=3.0)  # rewriting its own folder
    assert _files(first) == _files(second)
    other = tmp_path / "other"
    write_release(other, cases=4, seed=10, voxel_scale=3.0)
    assert _files(other) != _files(first)


def test_rewriting_a_synth_folder_leaves_no_stale_series(tmp_path):
    out = tmp_path / "data"
    write_release(out, cases=5, seed=3, voxel_scale=4.0)
    paths = write_release(out, cases=2, seed=3, voxel_scale=4.0)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(p.name for p in paths)
    assert len(_read_csv(out / "overview.csv")) == 2


def test_a_foreign_non_empty_folder_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not written by `spider synth`"):
        write_release(out, cases=1, seed=0, voxel_scale=4.0)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_a_synth_folder_with_user_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "data"
    write_release(out, cases=2, seed=0, voxel_scale=4.0)
    (out / "images" / "extra.mha").write_bytes(b"user data")
    before = _files(out)
    with pytest.raises(OutputFolderError, match="extra.mha"):
        write_release(out, cases=2, seed=1, voxel_scale=4.0)
    assert _files(out) == before


def test_a_file_as_output_folder_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError):
        write_release(target, cases=1, seed=0)


@pytest.mark.parametrize(
    "arguments",
    [
        {"cases": 0, "seed": 0},
        {"cases": 2, "seed": -1},
        {"cases": 2, "seed": 0, "sequences": ["t1", "flair"]},
        {"cases": 2, "seed": 0, "sequences": []},
        {"cases": 2, "seed": 0, "voxel_scale": -1.0},
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, arguments):
    out = tmp_path / "out"
    with pytest.raises(SynthError):
        write_release(out, **arguments)
    assert not out.exists()


def test_challenge_synth_imports_only_challenge_and_libraries():
    root = Path(__file__).resolve().parents[2] / "challenge"
    sources = list((root / "synth").glob("*.py")) + [root / "commands" / "synth.py"]
    forbidden = ("baselines", "evaluation", "submissions", "leaderboard")
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{source.name} imports {name}"
