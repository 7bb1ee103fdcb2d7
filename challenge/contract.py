"""The algorithm container I/O contract (grand-challenge.org, as used by SPIDER)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

INPUT_ROOT = PurePosixPath("/input")
OUTPUT_ROOT = PurePosixPath("/output")
INPUTS_JSON = INPUT_ROOT / "inputs.json"
INPUTS_JSON_IN_INPUT = INPUTS_JSON.relative_to(INPUT_ROOT)
"""inputs.json relative to the folder mounted at /input."""
IMAGE_SUFFIX = ".mha"


@dataclass(frozen=True)
class Socket:
    """One interface of the algorithm: a slug and the folder its image file lives in."""

    slug: str
    title: str
    kind: str
    relative_path: str

    def folder(self, root: PurePosixPath) -> PurePosixPath:
        return root / self.relative_path


INPUT_SOCKET = Socket(
    slug="sagittal-spine-mri",
    title="Sagittal Spine MRI",
    kind="Image",
    relative_path="images/sagittal-spine-mri",
)
OUTPUT_SOCKET = Socket(
    slug="sagittal-spine-mr-segmentation",
    title="Sagittal Spine MR Segmentation",
    kind="Segmentation",
    relative_path="images/sagittal-spine-mr-segmentation",
)
INPUT_FOLDER = INPUT_SOCKET.folder(INPUT_ROOT)
OUTPUT_FOLDER = OUTPUT_SOCKET.folder(OUTPUT_ROOT)


def input_image_path(uuid: str) -> PurePosixPath:
    """Where the container finds the case's image: /input/images/sagittal-spine-mri/<uuid>.mha."""
    return INPUT_FOLDER / f"{uuid}{IMAGE_SUFFIX}"


def inputs_json(uuid: str, *, image_name: str) -> list[dict]:
    """The content of /input/inputs.json for one job, in grand-challenge's layout."""
    return [
        {
            "interface": {
                "slug": INPUT_SOCKET.slug,
                "title": INPUT_SOCKET.title,
                "kind": INPUT_SOCKET.kind,
                "super_kind": "Image",
                "relative_path": INPUT_SOCKET.relative_path,
            },
            "image": {"pk": uuid, "name": image_name},
            "file": None,
            "value": None,
        }
    ]


def describe() -> str:
    """The contract in words, for container documentation and error messages."""
    return (
        f"Input: one image at {INPUT_FOLDER}/<uuid>{IMAGE_SUFFIX} (read-only) and {INPUTS_JSON} "
        f"listing it under the socket '{INPUT_SOCKET.slug}'.\n"
        f"Output: exactly one {IMAGE_SUFFIX} file in {OUTPUT_FOLDER}/, on the input's voxel grid, "
        "holding SPIDER label values (unsigned integers), its voxels inside the file itself "
        "(a header naming another data file is refused).\n"
        "No network, /tmp is not kept, one case per run."
    )
