import pytest
import SimpleITK as sitk

from challenge.cli import main
from challenge.errors import DataError
from challenge.release import parse_series_name, read_release


def test_reads_series_gradings_and_extra_columns(tiny_release):
    release = read_release(tiny_release).raise_for_problems()
    assert [s.name for s in release.series] == ["1_t1", "1_t2", "3_t2_SPACE"]
    first = release.series[0]
    assert (first.patient_id, first.sequence, first.subset) == (1, "t1", "validation")
    assert first.spacing_mm == pytest.approx((3.3, 0.7, 0.6))
    assert first.size == (6, 20, 24)
    assert first.overview["an_extra_column"] == "x"
    assert release.series[2].sequence == "t2_SPACE"
    gradings = release.gradings_of(1)
    assert set(gradings) == {201, 202}
    assert gradings[202].grades["Pfirrman grade"] == "4"
    assert set(release.label_counts) == {1, 2, 100, 201, 202}


@pytest.mark.parametrize(
    "name, patient, sequence",
    [("12_t1.mha", 12, "t1"), ("7_t2", 7, "t2"), ("257_t2_SPACE.mha", 257, "t2_SPACE")],
)
def test_series_names(name, patient, sequence):
    assert parse_series_name(name) == (patient, sequence)


@pytest.mark.parametrize("name", ["x_t1.mha", "1_t3.mha", "1_T2.mha", "1_t2_space.mha"])
def test_unexpected_series_names_are_rejected(name):
    with pytest.raises(DataError, match="expected <patient>_<sequence>.mha"):
        parse_series_name(name)


def test_missing_optional_columns_and_files_are_warnings(tiny_release):
    (tiny_release / "radiological_gradings.csv").unlink()
    (tiny_release / "overview.csv").write_text("new_file_name\n1_t1\n")
    release = read_release(tiny_release).raise_for_problems()
    assert release.series[0].subset is None
    assert any("no row in overview.csv" in w for w in release.warnings)
    assert any("no radiological_gradings.csv" in w for w in release.warnings)


def _rewrite_mask(release_root, name, transform):
    path = release_root / "masks" / f"{name}.mha"
    image = transform(sitk.ReadImage(str(path)))
    sitk.WriteImage(image, str(path))


def test_mask_on_another_grid_is_rejected_with_expected_and_found(tiny_release):
    def shift(image):
        image.SetSpacing((3.3, 0.7, 0.65))
        return image

    _rewrite_mask(tiny_release, "1_t2", shift)
    release = read_release(tiny_release)
    (problem,) = release.problems
    assert "masks/1_t2.mha is not on its image's grid" in problem
    assert "expected (3.3, 0.7, 0.6), found (3.3, 0.7, 0.65)" in problem
    with pytest.raises(DataError, match="not a valid SPIDER release"):
        release.raise_for_problems()


def test_mask_with_another_direction_is_rejected(tiny_release):
    def rotate(image):
        image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
        return image

    _rewrite_mask(tiny_release, "1_t1", rotate)
    (problem,) = read_release(tiny_release).problems
    assert "direction: expected" in problem


def test_unknown_label_values_are_rejected(tiny_release):
    def add_unknown(image):
        array = sitk.GetArrayFromImage(image)
        array[0, 0, 0] = 150
        out = sitk.GetImageFromArray(array)
        out.CopyInformation(image)
        return out

    _rewrite_mask(tiny_release, "3_t2_SPACE", add_unknown)
    (problem,) = read_release(tiny_release).problems
    assert "holds values that are not SPIDER labels: 150 (expected 0, 1-25" in problem


def test_float_mask_is_rejected(tiny_release):
    _rewrite_mask(tiny_release, "1_t1", lambda image: sitk.Cast(image, sitk.sitkFloat32))
    (problem,) = read_release(tiny_release).problems
    assert "expected an integer label image (e.g. uint8), found pixel type 32-bit float" in problem


def test_missing_mask_is_rejected(tiny_release):
    (tiny_release / "masks" / "1_t2.mha").unlink()
    (problem,) = read_release(tiny_release).problems
    assert problem == "1_t2.mha: no mask in masks/ for this image"
    assert not read_release(tiny_release, require_masks=False).problems


@pytest.mark.parametrize("folder", ["images", "masks"])
def test_unreadable_file_is_rejected(tiny_release, folder):
    (tiny_release / folder / "1_t1.mha").write_bytes(b"not a MetaImage at all")
    problems = read_release(tiny_release).problems
    assert len(problems) == 1
    assert "1_t1.mha: cannot read the image header" in problems[0]


def test_unexpected_file_and_bad_subset(tiny_release):
    (tiny_release / "images" / "notes.mha").write_bytes(b"")
    text = (tiny_release / "overview.csv").read_text().replace("validation", "testing")
    (tiny_release / "overview.csv").write_text(text)
    problems = read_release(tiny_release).problems
    assert any("unexpected file name 'notes.mha'" in p for p in problems)
    assert any("subset must be one of" in p and "'testing'" in p for p in problems)


def test_bad_grading_row_is_a_problem(tiny_release):
    with (tiny_release / "radiological_gradings.csv").open("a") as handle:
        handle.write("1,0,0,2\n")
    (problem,) = read_release(tiny_release).problems
    assert "line 4" in problem and "IVD label" in problem


def test_missing_folders(tmp_path):
    with pytest.raises(DataError, match="release folder not found"):
        read_release(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images/ folder"):
        read_release(tmp_path / "empty")


def test_data_check_command(tiny_release, capsys):
    assert main(["data", "check", str(tiny_release)]) == 0
    out = capsys.readouterr().out
    assert "Series: 3 from 2 patients (t1: 1, t2: 1, t2_SPACE: 1)" in out
    assert "Problems found: none" in out
    assert "201 L5/S1" in out
    (tiny_release / "masks" / "1_t2.mha").unlink()
    assert main(["data", "check", str(tiny_release)]) == 1
    assert "Problems found: 1" in capsys.readouterr().out
