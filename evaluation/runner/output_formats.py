"""The output formats the platform takes besides .mha, each turned into the harness's one-file .mha
copy before anything reads voxels: a .mhd header with its data file beside it, and TIFF."""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

from challenge import images
from challenge.contract import OUTPUT_SUFFIXES
from challenge.errors import DataError
from challenge.geometry import Geometry
from challenge.text import shown

MHD = ".mhd"
TIFF_SUFFIXES = (".tif", ".tiff")
_DATA_FILE_KEY = b"elementdatafile"
_LOCAL = "LOCAL"


class RefusedOutput(Exception):
    """The output cannot be turned into the harness's copy; `reason` says why, for the participant."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def output_suffix(name: str) -> str | None:
    """The output format of a file name (".mha", ".mhd", ".tif" or ".tiff", lower case), or None."""
    lowered = name.lower()
    return next((suffix for suffix in OUTPUT_SUFFIXES if lowered.endswith(suffix)), None)


def mhd_data_file(head: bytes, name: str) -> tuple[bytes, str | None]:
    """(the .mhd header with its data file named LOCAL, the data file's name) from the header's
    bytes; None for the name when the voxels follow the header in the same file.

    The data file must be a plain file name in the same folder: a path, a LIST of files or a
    %d pattern would make the host read files the container did not write."""
    try:
        keys = images.metaimage_keys(head, name)
    except DataError as error:
        raise RefusedOutput(str(error)) from None
    value = keys.get(_DATA_FILE_KEY.decode())
    if value is None:
        raise RefusedOutput(f"{name}: expected a MetaImage header with an 'ElementDataFile' line, found none")
    if value == _LOCAL:
        return head, None
    plain = value not in (".", "..") and not any(character in value for character in "/\\%\0 \t")
    if value.upper() == "LIST" or not plain:
        raise RefusedOutput(
            f"{name}: expected 'ElementDataFile = <file name>' naming one data file in the same folder, found "
            f"{shown(value, limit=100)!r}; write it with SimpleITK (e.g. WriteImage(image, 'output.mhd'))")
    lines = []
    for line in head.split(b"\n"):
        key = line.partition(b"=")[0].strip().lower()
        if key == _DATA_FILE_KEY:
            lines.append(b"ElementDataFile = LOCAL\n")
            break
        lines.append(line + b"\n")
    return b"".join(lines), value


def tiff_to_metaimage(staged: Path, expected: Geometry, copy_to: Path, *, name: str, mode: int) -> None:
    """Write the TIFF `staged` as the .mha `copy_to` (file mode `mode`) on the input's grid.

    A TIFF holds no origin or direction (and its resolution tags rarely the spacing), so its
    pages are taken as the input's slices: the size must match the input's, checked from the
    header before any voxel is read (a declared size decides what the reader allocates)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(staged))
    reader.SetImageIO("TIFFImageIO")
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise RefusedOutput(f"{name}: cannot read it as TIFF ({_last_line(error)})") from None
    size = tuple(reader.GetSize())
    if reader.GetDimension() == 2 and expected.size[2] == 1:
        size = (*size, 1)
    if len(size) != 3 or size != tuple(expected.size):
        raise RefusedOutput(f"{name}: expected a TIFF of the input's size (x, y, slices) {tuple(expected.size)}, "
                            f"found {size}")
    if reader.GetNumberOfComponents() != 1:
        raise RefusedOutput(f"{name}: expected one value per voxel, found {reader.GetNumberOfComponents()}")
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise RefusedOutput(f"{name}: cannot read the TIFF's voxels ({_last_line(error)})") from None
    if image.GetDimension() == 2:
        image = sitk.JoinSeries([image])
    image.SetSpacing(expected.spacing_mm)
    image.SetOrigin(expected.origin_mm)
    image.SetDirection(expected.direction)
    written = copy_to.with_name(f".partial-{copy_to.name}")
    try:
        sitk.WriteImage(image, str(written), True)
        os.chmod(written, mode)
        os.replace(written, copy_to)
    finally:
        written.unlink(missing_ok=True)


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return shown(lines[-1] if lines else type(error).__name__, limit=200)
