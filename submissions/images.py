"""Pinning a submitted algorithm image by digest and keeping it as a tarball that any node can load.

A submission names an image as a `docker save` tarball or as a local tag or id. Either way
the registry stores the image id (`sha256:<hex>`, the digest of the image configuration: the
same bytes give the same id on every Docker engine) and a copy of the image as a tarball in
the work folder, so that a cluster node whose Docker engine lacks the image loads it from
shared storage before its first job (`ensure_loaded`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from submissions.errors import IntakeError
from submissions.layout import image_archive_path


@dataclass(frozen=True)
class PinnedImage:
    """An image as the registry knows it: its digest and its tarball in the work folder."""

    digest: str
    archive_path: Path


ImagePinner = Callable[[str, Path], PinnedImage]
"""(tarball path or tag, work folder) -> PinnedImage; `docker_pinner` in production."""


def _client():
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as error:
        raise IntakeError(
            f"no Docker engine answers ({error}); start one (e.g. `make engine`) and submit again"
        ) from error
    return client


def docker_pinner(reference: str, work_dir: Path) -> PinnedImage:
    """Load a tarball (or find a local tag or id) in the local Docker engine and archive the image."""
    from docker.errors import DockerException, ImageNotFound

    client = _client()
    source = Path(reference)
    if source.is_file():
        try:
            with source.open("rb") as stream:
                loaded = client.images.load(stream)
        except (DockerException, OSError) as error:
            raise IntakeError(f"{source}: not a loadable `docker save` tarball ({error})") from error
        ids = sorted({image.id for image in loaded})
        if len(ids) != 1:
            raise IntakeError(f"{source}: expected a tarball of exactly one image, found {len(ids)}")
        digest = ids[0]
        archive = image_archive_path(work_dir, digest)
        if not archive.is_file():
            _copy_atomically(source, archive)
        return PinnedImage(digest, archive)
    try:
        image = client.images.get(reference)
    except ImageNotFound:
        raise IntakeError(
            f"{reference!r} is neither a file nor an image known to the local Docker engine; "
            "give a `docker save` tarball or the tag of a built image"
        ) from None
    except DockerException as error:
        raise IntakeError(f"cannot look up the image {reference!r}: {error}") from error
    digest = image.id
    archive = image_archive_path(work_dir, digest)
    if not archive.is_file():
        _write_chunks_atomically(image.save(named=False), archive)
    return PinnedImage(digest, archive)


def ensure_loaded(digest: str, archive_path: str | Path | None, *, client=None) -> None:
    """Make the local Docker engine hold image `digest`, loading it from its archive if needed."""
    from docker.errors import ImageNotFound

    client = client or _client()
    try:
        client.images.get(digest)
        return
    except ImageNotFound:
        pass
    if archive_path is None or not Path(archive_path).is_file():
        raise IntakeError(
            f"image {digest} is not in this node's Docker engine and its archive {archive_path} is not "
            "readable here; put the work folder on storage that every node mounts at the same path"
        )
    with Path(archive_path).open("rb") as stream:
        loaded = client.images.load(stream)
    if digest not in {image.id for image in loaded}:
        raise IntakeError(f"{archive_path} does not hold image {digest}")


def _copy_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-", suffix=".tar")
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_chunks_atomically(chunks, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-", suffix=".tar")
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
