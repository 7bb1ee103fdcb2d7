"""Reading image headers, images and SPIDER label images: one set of checks, one error style.

Every caller (the release reader, the runner, scoring, the baseline and its container) reads
through here. Errors are challenge.errors types whose message starts with the file's name and
says what was expected and what was found, e.g.
``12_t2.mha: expected an integer label image (e.g. uint8), found pixel type 32-bit float``.
Only numpy and SimpleITK are needed (this module also runs inside the reference container).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from challenge import labels
from challenge.errors import GeometryMismatchError, UnknownLabelError, UnreadableFileError
from challenge.geometry import DIRECTION_TOLERANCE, Geometry

METAIMAGE_IO = "MetaImageIO"
MAX_HEADER_BYTES = 64 * 1024
"""A MetaImage header longer than this is refused (real headers are well under 1 KiB)."""
_LOCAL_DATA = "LOCAL"
# Header keys that make the reader take voxels from elsewhere than right after the header.
# Keys are compared without case (stricter than MetaIO), so no spelling slips past the check.
_DATA_FILE_KEY = "elementdatafile"
_REDIRECTING_KEYS = {"headersize": "HeaderSize", "headersizeperslice": "HeaderSizePerSlice"}

_INTEGER_PIXEL_TYPES = frozenset({
    sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16,
    sitk.sitkUInt32, sitk.sitkInt32, sitk.sitkUInt64, sitk.sitkInt64,
})


@dataclass(frozen=True)
class LabelImage:
    """A label image as read and checked: (z, y, x) uint8 SPIDER values and the voxel grid."""

    array: np.ndarray
    geometry: Geometry

    def voxel_counts(self) -> dict[int, int]:
        """Voxels per foreground label present, ascending by label."""
        counts = np.bincount(self.array.ravel(), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts) if v != labels.BACKGROUND}


def read_header(path: Path | str, *, shown_as: str | None = None) -> Geometry:
    """The voxel grid of an image file from its header, without reading voxels."""
    return Geometry.of(_header_reader(Path(path), shown_as or Path(path).name))


def _header_reader(path: Path, name: str, *, io: str | None = None) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    if io is not None:
        reader.SetImageIO(io)
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise UnreadableFileError(f"{name}: cannot read the image header ({_last_line(error)})") from error
    return reader


def read_image(path: Path | str, *, what: str = "image", shown_as: str | None = None,
               self_contained: bool = False) -> sitk.Image:
    """A 3D image with one value per voxel (messages name the file `shown_as`, default its name);
    `self_contained` as in `read_labels`."""
    name = shown_as or Path(path).name
    return _voxels(_volume_header(Path(path), what=what, name=name, self_contained=self_contained),
                   what=what, name=name)


def _volume_header(path: Path, *, what: str, name: str, self_contained: bool) -> sitk.ImageFileReader:
    """A reader with the header read and checked to declare one 3D volume; a file someone else wrote
    (`self_contained`) is first checked to hold its own voxels and is read as MetaImage only."""
    if self_contained:
        check_self_contained(path, shown_as=name)
    reader = _header_reader(path, name, io=METAIMAGE_IO if self_contained else None)
    _require_volume(reader, what=what, name=name)
    return reader


def _require_volume(reader: sitk.ImageFileReader, *, what: str, name: str) -> None:
    """The header declares a 3D image with one value per voxel."""
    if reader.GetDimension() != 3:
        raise UnreadableFileError(f"{name}: expected a 3D {what}, found {reader.GetDimension()}D")
    if reader.GetNumberOfComponents() != 1:
        raise UnreadableFileError(f"{name}: expected one value per voxel, found {reader.GetNumberOfComponents()}")


def _voxels(reader: sitk.ImageFileReader, *, what: str, name: str) -> sitk.Image:
    """The image of a reader from `_volume_header`."""
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise UnreadableFileError(f"{name}: cannot read the {what}'s voxels ({_last_line(error)})") from error


def check_self_contained(path: Path | str, *, shown_as: str | None = None) -> None:
    """Refuse (UnreadableFileError) a file whose voxels would not come from its own bytes.

    The file must be a MetaImage (.mha) whose header ends with `ElementDataFile = LOCAL` and
    holds no `HeaderSize` key: a header naming another data file (an absolute or parent path, a
    LIST of files, a %d pattern) or skipping bytes would make the reader, which runs on the host,
    read a file the container did not write. Only the header is read.
    """
    path = Path(path)
    name = shown_as or path.name
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_HEADER_BYTES)
    except OSError as error:
        raise UnreadableFileError(f"{name}: cannot read the image header ({error.strerror})") from None
    if len(head) == MAX_HEADER_BYTES:
        head = head[: head.rfind(b"\n") + 1]  # a line cut by the limit is not judged
    keys = metaimage_keys(head, name)
    data_file = keys.get(_DATA_FILE_KEY)
    if data_file is None:
        raise UnreadableFileError(
            f"{name}: expected a MetaImage header ending with 'ElementDataFile = {_LOCAL_DATA}' within the first "
            f"{MAX_HEADER_BYTES // 1024} KiB, found none; write a single .mha file (e.g. SimpleITK.WriteImage)")
    if data_file != _LOCAL_DATA:
        raise UnreadableFileError(
            f"{name}: expected 'ElementDataFile = {_LOCAL_DATA}' (the voxels inside this file), found a header that "
            "takes them from another file; write a single .mha file with its voxels inside")
    redirecting = [shown for key, shown in _REDIRECTING_KEYS.items() if key in keys]
    if redirecting:
        raise UnreadableFileError(
            f"{name}: expected no {' or '.join(redirecting)} in the header (it makes the reader skip or take "
            "other bytes); write the file with SimpleITK or ITK, which never set it")


def metaimage_keys(head: bytes, name: str) -> dict[str, str]:
    """The header's `Key = Value` lines up to and including ElementDataFile (keys lower-cased)."""
    keys: dict[str, str] = {}
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line.strip():
            continue
        key, equals, value = line.partition(b"=")
        if not equals:
            raise UnreadableFileError(f"{name}: expected a MetaImage header of 'Key = Value' lines, "
                                      "found a line without '='")
        try:
            text_key, text_value = key.decode("ascii").strip(), value.decode("ascii").strip()
        except UnicodeDecodeError:
            raise UnreadableFileError(f"{name}: expected a MetaImage header in ASCII text, found other bytes "
                                      "before 'ElementDataFile'") from None
        keys[text_key.lower()] = text_value
        if text_key.lower() == _DATA_FILE_KEY:
            break
    return keys


def read_labels(path: Path | str, *, what: str = "mask", expected: Geometry | None = None,
                expected_what: str = "the input image", shown_as: str | None = None,
                self_contained: bool = False) -> LabelImage:
    """A SPIDER label image, after every check that scoring relies on.

    Checks, in order: readable, 3D, one value per voxel, an integer pixel type, a direction
    matrix that is a rotation or flip of the voxel axes (surface distances need one), the voxel
    grid of `expected` (tolerances in challenge.geometry; `expected_what` names it), and values
    in the SPIDER label map. Messages name the file `shown_as` (default: its file name).
    `self_contained` (a file someone else wrote) first applies `check_self_contained` and reads it
    as MetaImage only. Every check but the values reads the header only, so a file declaring
    another size or type is refused before the reader allocates anything.
    Raises UnreadableFileError, GeometryMismatchError or UnknownLabelError.
    """
    path = Path(path)
    name = shown_as or path.name
    reader = _volume_header(path, what=what, name=name, self_contained=self_contained)
    if reader.GetPixelID() not in _INTEGER_PIXEL_TYPES:
        raise UnreadableFileError(f"{name}: expected an integer label image (e.g. uint8), found pixel type "
                                  f"{sitk.GetPixelIDValueAsString(reader.GetPixelID())}")
    geometry = Geometry.of(reader)
    direction = geometry.direction_matrix
    if np.max(np.abs(direction @ direction.T - np.eye(3))) > DIRECTION_TOLERANCE:
        raise UnreadableFileError(
            f"{name}: expected a direction matrix that rotates or flips the voxel axes (orthonormal), "
            f"found {geometry.direction}")
    if expected is not None:
        _require_grid(geometry, expected, name=name, expected_what=expected_what)
    image = _voxels(reader, what=what, name=name)
    view = sitk.GetArrayViewFromImage(image)  # valid only while `image` lives: copied below
    checked = as_label_array(view, what=name)
    return LabelImage(checked.copy() if checked is view else checked, geometry)


def _require_grid(geometry: Geometry, expected: Geometry, *, name: str, expected_what: str) -> None:
    differences = expected.differences(geometry)
    if differences:
        raise GeometryMismatchError(f"{name} is not on {expected_what}'s grid: " + "; ".join(differences))


def as_uint8_labels(array: np.ndarray, *, what: str) -> np.ndarray:
    """`array` as uint8 (no copy when it already is), refusing (UnknownLabelError naming `what`) a
    non-integer dtype or values outside 0..255; whether each value is in the label map is not checked."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise UnknownLabelError(f"{what}: expected integer labels, found dtype {array.dtype}")
    if array.dtype == np.uint8:
        return array
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high > 255:
        outside = np.unique(array[(array < 0) | (array > 255)])
        raise UnknownLabelError(f"{what} holds values that are not SPIDER labels: "
                                f"{labels.unknown_values_text(outside.tolist())}")
    return array.astype(np.uint8)


def as_label_array(array: np.ndarray, *, what: str) -> np.ndarray:
    """`array` as uint8 SPIDER labels (a copy unless it already is a uint8 array of valid labels).

    Raises UnknownLabelError naming `what` for values outside the label map.
    """
    array = as_uint8_labels(array, what=what)
    present = np.flatnonzero(np.bincount(array.ravel(), minlength=256))
    unknown = labels.unknown_values(present.tolist())
    if unknown:
        raise UnknownLabelError(f"{what} holds values that are not SPIDER labels: "
                                f"{labels.unknown_values_text(unknown)}")
    return array


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
