"""The algorithm container I/O contract (grand-challenge.org, as used by SPIDER)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

INPUT_ROOT = PurePosixPath("/input")
OUTPUT_ROOT = PurePosixPath("/output")
INPUTS_JSON = INPUT_ROOT / "inputs.json"
INPUTS_JSON_IN_INPUT = INPUTS_JSON.relative_to(INPUT_ROOT)
"""inputs.json relative to the folder mounted at /input."""
IMAGE_SUFFIX = ".mha"
OUTPUT_SUFFIXES = (".mha", ".mhd", ".tif", ".tiff")
"""Image files an algorithm may write (as on grand-challenge): MetaImage in one file or as a .mhd
header beside its data file, or TIFF; compared without case."""
OUTPUT_FORMATS_SHOWN = ".mha, .mhd (+ its data file) or .tif"


@dataclass(frozen=True)
class Socket:
    """One socket (the platform's "interface") of the algorithm: a slug, the folder its image file
    lives in, and the rest of the object the platform writes into inputs.json. `pk` is this
    harness's own number for the socket (the platform's differ per site; algorithms key on slugs)."""

    slug: str
    title: str
    kind: str
    relative_path: str
    pk: int
    description: str = ""
    super_kind: str = "Image"

    def folder(self, root: PurePosixPath) -> PurePosixPath:
        return root / self.relative_path

    def as_json(self) -> dict:
        """The socket object as grand-challenge writes it (under both `socket` and `interface`)."""
        return {
            "title": self.title, "description": self.description, "slug": self.slug, "kind": self.kind,
            "pk": self.pk, "default_value": None, "super_kind": self.super_kind,
            "relative_path": self.relative_path, "overlay_segments": [], "look_up_table": None,
        }


INPUT_SOCKET = Socket(
    slug="sagittal-spine-mri",
    title="Sagittal Spine MRI",
    kind="Image",
    relative_path="images/sagittal-spine-mri",
    pk=1,
    description="A sagittal lumbar-spine MR series (T1, T2 or T2 SPACE).",
)
OUTPUT_SOCKET = Socket(
    slug="sagittal-spine-mr-segmentation",
    title="Sagittal Spine MR Segmentation",
    kind="Segmentation",
    relative_path="images/sagittal-spine-mr-segmentation",
    pk=2,
    description="Vertebrae, intervertebral discs and spinal canal with the SPIDER label values.",
)
INPUT_FOLDER = INPUT_SOCKET.folder(INPUT_ROOT)
OUTPUT_FOLDER = OUTPUT_SOCKET.folder(OUTPUT_ROOT)


def input_image_path(uuid: str) -> PurePosixPath:
    """Where the container finds the case's image: /input/images/sagittal-spine-mri/<uuid>.mha."""
    return INPUT_FOLDER / f"{uuid}{IMAGE_SUFFIX}"


def inputs_json(uuid: str, *, image_name: str) -> list[dict]:
    """The content of /input/inputs.json for one job, in grand-challenge's current layout: the socket
    under `socket` (read by the 2026 templates) and under `interface` (read by older ones), the
    image by its pk (`uuid`, also the file's name) and the socket value's own pk."""
    return [
        {
            "socket": INPUT_SOCKET.as_json(),
            "interface": INPUT_SOCKET.as_json(),
            "image": {"pk": uuid, "name": image_name},
            "file": None,
            "value": None,
            "pk": value_pk(uuid),
        }
    ]


def value_pk(uuid: str) -> int:
    """A socket value's pk for a job: a positive integer derived from the job's uuid (stable)."""
    return zlib.crc32(uuid.encode("utf-8")) or 1


def describe() -> str:
    """The contract in words, for container documentation and error messages."""
    return (
        f"Input: one image at {INPUT_FOLDER}/<uuid>{IMAGE_SUFFIX} (read-only) and {INPUTS_JSON} "
        f"listing it under the socket '{INPUT_SOCKET.slug}'.\n"
        f"Output: exactly one image ({OUTPUT_FORMATS_SHOWN}) in {OUTPUT_FOLDER}/, on the input's "
        "voxel grid, holding SPIDER label values (unsigned integers); a .mhd names its data file in "
        "the same folder, a .tif (which holds no origin or direction) is taken on the input's grid.\n"
        "No network, /tmp is not kept, one case per run."
    )
