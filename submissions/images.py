"""Pinning a submitted algorithm image by digest and keeping it as a tarball that any node can load.

A submission names an image as a `docker save` tarball or as a local tag or id. Either way
the registry stores the image id (`sha256:<hex>`, the digest of the image configuration: the
same bytes give the same id on every Docker engine) and a copy of the image as a tarball in
the work folder, so that a cluster node whose Docker engine lacks the image loads it from
shared storage before its first job (`ensure_loaded`).

A submitted tarball is hostile input. `docker_pinner` reads the submitted file exactly once,
into a private copy in the archive folder (gzip, bzip2 and xz are unpacked on the way), and
inspects that copy with `tarfile` before the engine sees anything:

- the file is at most `ImageLimits.tarball_bytes`, its tar members and its layers unpack to at
  most `ImageLimits.unpacked_bytes`, and the image has at most `ImageLimits.layers` layers;
- no member name is absolute or holds `..`; no member is a device, a FIFO, a hard link or a
  sparse file; a symbolic link (`docker save` links a layer that appears twice) must point to
  a regular member of the tarball;
- manifest.json names exactly one image; its config blob gives the image id; each layer
  hashes to the config's `rootfs.diff_ids` entry (so the layers are the image's own).

The engine then loads a rewritten tarball that holds manifest.json without `RepoTags`, the
config and the layers, and nothing else: no tag in a submitted tarball (manifest.json
`RepoTags`, the legacy `repositories` file, OCI `index.json` annotations) is ever applied, so
a submission cannot move a local tag such as `python:3.11-slim`. That same rewritten tarball
is the archive kept in the work folder. A refused tarball leaves no temporary file behind and
no image that its load added.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import io
import json
import lzma
import os
import posixpath
import re
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, cast

from submissions.errors import IntakeError
from submissions.layout import image_archive_path

GB = 1000**3


@dataclass(frozen=True)
class ImageLimits:
    """Caps on a submitted image; the defaults are grand-challenge's (10 GB images)."""

    tarball_bytes: int = 10 * GB
    """The submitted file, as submitted (compressed or not)."""
    unpacked_bytes: int = 10 * GB
    """The tarball's members once unpacked, and the image's layers once decompressed."""
    layers: int = 125
    """The layers of the image (`rootfs.diff_ids`)."""

    def __post_init__(self) -> None:
        for name in ("tarball_bytes", "unpacked_bytes", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ImageLimits.{name} must be a positive integer, found {value!r}")


@dataclass(frozen=True)
class PinnedImage:
    """An image as the registry knows it: its digest and its tarball in the work folder."""

    digest: str
    archive_path: Path


ImagePinner = Callable[[str, Path, "ImageLimits"], PinnedImage]
"""(tarball path or tag, work folder, the phase's limits) -> PinnedImage; `docker_pinner` in production."""

_CHUNK = 1024 * 1024
_MANIFEST_BYTES = 1024 * 1024
_CONFIG_BYTES = 4 * 1024 * 1024
_MAX_MEMBERS = 100_000
_DIFF_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_UNLIMITED = ImageLimits(tarball_bytes=2**62, unpacked_bytes=2**62, layers=2**31)
_COMPRESSIONS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


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


def docker_pinner(reference: str, work_dir: Path, limits: ImageLimits = ImageLimits()) -> PinnedImage:
    """Pin a `docker save` tarball (or a local tag or id) within `limits` and archive the image.

    A tarball is checked and rewritten without tags before the engine loads it (see the module
    docstring); the archive kept is the rewritten tarball. A local tag or id is saved by id.
    """
    client = _client()
    source = Path(reference)
    fd = _open_source(source)
    if fd is None:
        return _pin_local(client, reference, work_dir, limits)
    return _pin_tarball(client, source, fd, work_dir, limits)


def ensure_loaded(digest: str, archive_path: str | Path | None, *, client=None) -> None:
    """Make the local Docker engine hold image `digest`, loading it from its archive if needed.

    The archive must hold exactly image `digest` (checked before loading); no tag is applied:
    an archive that names tags is rewritten without them first.
    """
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
    archive = Path(archive_path)
    try:
        with tarfile.open(archive, "r:*") as tar:  # archives made before tag-free rewriting may be compressed
            plan = _inspect(tar, archive, _UNLIMITED, hash_layers=False)
            if plan.digest != digest:
                raise IntakeError(
                    f"{archive} holds image {plan.digest}, expected {digest}; it is not this image's archive"
                )
            before = _image_ids(client)
            if plan.tag_free:
                with archive.open("rb") as stream:
                    _load_checked(client, stream, digest, before, archive)
                return
            folder = archive.parent if os.access(archive.parent, os.W_OK) else None
            with tempfile.TemporaryFile(dir=folder, prefix=".loading-", suffix=".tar") as stream:
                _write_archive(tar, plan, stream)  # the same archive without its tags
                stream.seek(0)
                _load_checked(client, stream, digest, before, archive)
    except tarfile.TarError as error:
        raise IntakeError(f"{archive}: expected an image archive, found a broken tar ({error})") from error


# --- a local tag or id ---------------------------------------------------------------------------


def _pin_local(client, reference: str, work_dir: Path, limits: ImageLimits) -> PinnedImage:
    from docker.errors import DockerException, ImageNotFound

    try:
        image = client.images.get(reference)
    except ImageNotFound:
        raise IntakeError(
            f"{reference!r} is neither a file nor an image known to the local Docker engine; "
            "give a `docker save` tarball or the tag of a built image"
        ) from None
    except DockerException as error:
        raise IntakeError(f"cannot look up the image {reference!r}: {error}") from error
    layers = ((image.attrs or {}).get("RootFS") or {}).get("Layers") or []
    if len(layers) > limits.layers:
        raise IntakeError(
            f"{reference!r}: expected an image of at most {limits.layers} layers, found {len(layers)} layers; "
            "squash layers (fewer RUN/COPY steps, a multi-stage build) and submit again"
        )
    digest = image.id
    archive = image_archive_path(work_dir, digest)
    if not archive.is_file():
        _write_chunks_atomically(image.save(named=False), archive)
    return PinnedImage(digest, archive)


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


# --- a submitted tarball ---------------------------------------------------------------------------


def _open_source(source: Path) -> int | None:
    """The submitted file, opened once (never blocking on a FIFO); None when no such file exists."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(source, flags)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return None
        raise IntakeError(f"{source}: the submitted image cannot be read ({error.strerror})") from error
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    if stat.S_ISDIR(mode):
        return None  # a folder named like the tag: look the tag up, as a tag is what it must be
    raise IntakeError(f"{source}: expected a regular file (a `docker save` tarball), found {_kind(mode)}")


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, name in kinds:
        if test(mode):
            return name
    return "a special file"


def _pin_tarball(client, source: Path, fd: int, work_dir: Path, limits: ImageLimits) -> PinnedImage:
    folder = image_archive_path(work_dir, "sha256:" + "0" * 64).parent  # the archive folder, whatever the digest
    temporaries: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        copy = _temporary(folder, temporaries)
        with os.fdopen(fd, "rb", buffering=0, closefd=True) as raw:
            fd = -1
            with copy.open("wb") as stream:
                _copy_source(raw, stream, source, limits)
        with tarfile.open(copy, "r:") as tar:
            plan = _inspect(tar, source, limits, hash_layers=True)
            archive = image_archive_path(work_dir, plan.digest)
            before = _image_ids(client)
            if plan.digest in before and archive.is_file():
                return PinnedImage(plan.digest, archive)
            rewritten = _temporary(folder, temporaries)
            with rewritten.open("wb") as stream:
                _write_archive(tar, plan, stream)
                stream.flush()
                os.fsync(stream.fileno())
        copy.unlink()  # the disk holds one copy of the image at a time
        with rewritten.open("rb") as stream:
            _load_checked(client, stream, plan.digest, before, source)
        try:
            os.replace(rewritten, archive)
        except BaseException:
            _remove_added(client, {plan.digest}, before)
            raise
        temporaries.remove(rewritten)
        return PinnedImage(plan.digest, archive)
    except tarfile.TarError as error:
        raise IntakeError(
            f"{source}: expected a `docker save` tarball, found a broken tar archive ({error})"
        ) from error
    except OSError as error:
        raise IntakeError(f"{source}: the image could not be taken in ({error})") from error
    finally:
        if fd >= 0:
            os.close(fd)
        for path in temporaries:
            path.unlink(missing_ok=True)


def _temporary(folder: Path, temporaries: list[Path]) -> Path:
    handle, name = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".tar")  # mode 0600
    os.close(handle)
    temporaries.append(Path(name))
    return Path(name)


class _BoundedReader(io.RawIOBase):
    """The submitted file, read once, refused as soon as more than `limit` bytes came out of it."""

    def __init__(self, raw: IO[bytes], limit: int, source: Path, head: bytes) -> None:
        self._raw, self._limit, self._source, self._head = raw, limit, source, head
        self.count = len(head)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._raw.read(min(len(buffer), _CHUNK))
        if not data:
            return 0
        self.count += len(data)
        if self.count > self._limit:
            raise IntakeError(
                f"{self._source}: expected a tarball of at most {_size(self._limit)}, found more "
                f"({_size(self.count)} read so far; the file grew while it was read)"
            )
        buffer[: len(data)] = data
        return len(data)


def _copy_source(raw: IO[bytes], target: IO[bytes], source: Path, limits: ImageLimits) -> None:
    """Copy the submitted file into `target` as a plain tar: decompressed, within the limits."""
    size = os.fstat(raw.fileno()).st_size
    if size > limits.tarball_bytes:
        raise IntakeError(
            f"{source}: expected a tarball of at most {_size(limits.tarball_bytes)}, found {_size(size)}"
        )
    head = raw.read(8)
    reader = _BoundedReader(raw, limits.tarball_bytes, source, head)
    compression = _compression(head)
    if compression not in _UNPACKED:
        raise IntakeError(
            f"{source}: expected a `docker save` tarball, plain or compressed with gzip, bzip2 or xz; "
            f"found one compressed with {compression}"
        )
    stream = _decompressed(io.BufferedReader(reader, _CHUNK), compression)
    written = 0
    try:
        while chunk := stream.read(_CHUNK):
            written += len(chunk)
            if compression is not None and written > limits.unpacked_bytes:
                raise IntakeError(
                    f"{source}: expected an image that unpacks to at most {_size(limits.unpacked_bytes)}, "
                    f"found a {compression} tarball that unpacks to more ({_size(written)} so far)"
                )
            target.write(chunk)
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as error:
        if compression is None and not isinstance(error, EOFError):
            raise
        raise IntakeError(
            f"{source}: expected a `docker save` tarball, found broken {compression} data ({error})"
        ) from error


_UNPACKED = (None, "gzip", "bzip2", "xz")


def _decompressed(stream: IO[bytes], compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    if compression == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(stream, "rb"))
    if compression == "xz":
        return cast(IO[bytes], lzma.LZMAFile(stream, "rb"))
    return stream


def _compression(head: bytes) -> str | None:
    for magic, name in _COMPRESSIONS:
        if head.startswith(magic):
            return name
    return None


# --- inspection ---------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What a checked tarball holds: the image's config, its layers' members, whether it is tag-free."""

    digest: str
    config: bytes
    diff_ids: list[str]
    layers: dict[str, tarfile.TarInfo] = field(default_factory=dict)  # diff id -> regular member
    tag_free: bool = True


def _inspect(tar: tarfile.TarFile, source: Path, limits: ImageLimits, *, hash_layers: bool) -> _Plan:
    members = _scan_members(tar, source, limits)
    manifest_member = _regular(members, "manifest.json", source, "manifest.json")
    try:
        manifest = json.loads(_read_member(tar, manifest_member, _MANIFEST_BYTES, source, "manifest.json"))
    except ValueError as error:
        raise IntakeError(f"{source}: expected manifest.json to be JSON, found broken JSON ({error})") from None
    if not isinstance(manifest, list):
        raise IntakeError(f"{source}: expected manifest.json to be a list of images, found {type(manifest).__name__}")
    if len(manifest) != 1:
        raise IntakeError(f"{source}: expected a tarball of exactly one image, found {len(manifest)} images")
    entry = manifest[0]
    config_name = entry.get("Config") if isinstance(entry, dict) else None
    layer_names = entry.get("Layers") if isinstance(entry, dict) else None
    if (
        not isinstance(config_name, str)
        or not isinstance(layer_names, list)
        or not all(isinstance(name, str) for name in layer_names)
    ):
        raise IntakeError(
            f"{source}: expected manifest.json's image to name its Config and Layers, found {entry!r:.200}"
        )
    _check_layer_count(len(layer_names), limits, source)
    config_member = _regular(members, config_name, source, "the config")
    config = _read_member(tar, config_member, _CONFIG_BYTES, source, "the config")
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    diff_ids = _diff_ids(config, source)
    _check_layer_count(len(diff_ids), limits, source)
    if len(diff_ids) != len(layer_names):
        raise IntakeError(
            f"{source}: expected as many layers in manifest.json as in the config's rootfs.diff_ids, "
            f"found {len(layer_names)} and {len(diff_ids)}"
        )
    plan = _Plan(digest=digest, config=config, diff_ids=diff_ids)
    plan.tag_free = not entry.get("RepoTags") and "repositories" not in members and "index.json" not in members
    by_member: dict[str, list[str]] = {}
    for diff_id, name in zip(diff_ids, layer_names, strict=True):
        member = _layer_member(members, name, source)
        by_member.setdefault(member.name, []).append(diff_id)
        plan.layers.setdefault(diff_id, member)
    if hash_layers:
        _check_layers(tar, plan, by_member, source, limits)
    return plan


def _check_layer_count(count: int, limits: ImageLimits, source: Path) -> None:
    if count > limits.layers:
        raise IntakeError(f"{source}: expected an image of at most {limits.layers} layers, found {count} layers")


def _scan_members(tar: tarfile.TarFile, source: Path, limits: ImageLimits) -> dict[str, tarfile.TarInfo]:
    """Every member by its normalized name, after the checks on names, types and sizes."""
    members: dict[str, tarfile.TarInfo] = {}
    total = 0
    while (member := tar.next()) is not None:
        if len(members) >= _MAX_MEMBERS:
            raise IntakeError(f"{source}: expected a tarball of at most {_MAX_MEMBERS:,} members, found more")
        name = _normal_name(member.name, source)
        if member.issparse():
            raise IntakeError(f"{source}: member {member.name!r} is a sparse file; `docker save` writes none")
        if member.issym():
            _check_link_target(name, member.linkname, source)
        elif not (member.isreg() or member.isdir()):
            kind = "a hard link" if member.islnk() else "a device or FIFO" if member.isdev() else "a special member"
            raise IntakeError(
                f"{source}: expected regular files, folders and links between layers, found {kind}: {member.name!r}"
            )
        if name in members:
            raise IntakeError(f"{source}: member {member.name!r} appears twice in the tarball")
        members[name] = member
        total += member.size
    if total > limits.unpacked_bytes:
        raise IntakeError(
            f"{source}: expected an image that unpacks to at most {_size(limits.unpacked_bytes)}, "
            f"found tar members of {_size(total)}"
        )
    return members


def _normal_name(name: str, source: Path) -> str:
    parts = name.split("/")
    if not name or name.startswith("/") or ".." in parts or "\x00" in name:
        raise IntakeError(f"{source}: expected relative member names inside the tarball, found {name!r}")
    normal = posixpath.normpath(name)
    return "" if normal == "." else normal


def _check_link_target(name: str, target: str, source: Path) -> None:
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if not target or target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise IntakeError(
            f"{source}: expected links to point to members of the tarball, found {name!r} -> {target!r}"
        )


def _lookup(members: dict[str, tarfile.TarInfo], name: str, source: Path, what: str) -> tarfile.TarInfo:
    key = _normal_name(name, source) if name else ""
    member = members.get(key) if key else None
    if member is None:
        raise IntakeError(f"{source}: expected {what} {name!r} in the tarball, found no such member")
    return member


def _regular(members: dict[str, tarfile.TarInfo], name: str, source: Path, what: str) -> tarfile.TarInfo:
    member = _lookup(members, name, source, what)
    if not member.isreg():
        raise IntakeError(f"{source}: expected {what} {name!r} to be a regular file, found {_member_kind(member)}")
    return member


def _layer_member(members: dict[str, tarfile.TarInfo], name: str, source: Path) -> tarfile.TarInfo:
    """A layer's regular member; one link (docker save's link to a layer written before) is followed."""
    member = _lookup(members, name, source, "layer")
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(_normal_name(name, source)), member.linkname))
        linked = members.get(target)
        if linked is None or not linked.isreg():
            found = "no such member" if linked is None else _member_kind(linked)
            raise IntakeError(
                f"{source}: expected layer {name!r} -> {member.linkname!r} to point to a regular member, found {found}"
            )
        member = linked
    if not member.isreg():
        raise IntakeError(f"{source}: expected layer {name!r} to be a regular file, found {_member_kind(member)}")
    return member


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a link to {member.linkname!r}"
    return "a folder" if member.isdir() else "a special member"


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, source: Path, what: str) -> bytes:
    if member.size > limit:
        raise IntakeError(f"{source}: expected {what} to be at most {_size(limit)}, found {_size(member.size)}")
    stream = tar.extractfile(member)
    assert stream is not None  # a regular member
    return stream.read(limit + 1)


def _diff_ids(config: bytes, source: Path) -> list[str]:
    try:
        document = json.loads(config)
    except ValueError as error:
        raise IntakeError(f"{source}: expected the image config to be JSON, found broken JSON ({error})") from None
    rootfs = document.get("rootfs") if isinstance(document, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if (
        not isinstance(rootfs, dict)
        or rootfs.get("type") != "layers"
        or not isinstance(diff_ids, list)
        or not all(isinstance(diff_id, str) and _DIFF_ID.match(diff_id) for diff_id in diff_ids)
    ):
        raise IntakeError(
            f"{source}: expected the image config's rootfs to list layers as 'sha256:<hex>' diff_ids, "
            f"found {rootfs!r:.200}"
        )
    return diff_ids


class _HashingReader(io.RawIOBase):
    """A layer's uncompressed bytes: hashed and counted against what is left of the unpacked budget."""

    def __init__(self, stream: IO[bytes], used: int, limit: int, source: Path, name: str) -> None:
        self._stream, self._used, self._limit, self._source, self._name = stream, used, limit, source, name
        self.count = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(min(len(buffer), _CHUNK))
        self.count += len(data)
        if self._used + self.count > self._limit:
            raise IntakeError(
                f"{self._source}: expected an image whose layers unpack to at most {_size(self._limit)}, "
                f"found more ({_size(self._used + self.count)} by layer {self._name!r})"
            )
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)


def _check_layers(
    tar: tarfile.TarFile, plan: _Plan, by_member: dict[str, list[str]], source: Path, limits: ImageLimits
) -> None:
    """Each layer hashes to its diff id; all layers together unpack within the limit; no sparse file."""
    used = 0
    members = sorted({m.name: m for m in plan.layers.values()}.values(), key=lambda m: m.offset_data)
    for member in members:
        raw = tar.extractfile(member)
        assert raw is not None  # a regular member
        compression = _compression(raw.read(8))
        raw.seek(0)
        if compression not in _UNPACKED:
            raise IntakeError(
                f"{source}: expected layer {member.name!r} to be a tar, plain or compressed with gzip, bzip2 or xz; "
                f"found one compressed with {compression}"
            )
        reader = _HashingReader(_decompressed(raw, compression), used, limits.unpacked_bytes, source, member.name)
        buffered = io.BufferedReader(reader, _CHUNK)
        try:
            if buffered.peek(1):  # else an empty layer
                _scan_layer(buffered, member, source)
            while buffered.read(_CHUNK):  # the rest: end-of-archive blocks, padding
                pass
        except (EOFError, zlib.error, lzma.LZMAError, OSError) as error:
            raise IntakeError(
                f"{source}: expected layer {member.name!r} to be a tar, found broken data ({error})"
            ) from None
        used += reader.count
        found = "sha256:" + reader.sha256.hexdigest()
        wrong = [diff_id for diff_id in by_member[member.name] if diff_id != found]
        if wrong:
            raise IntakeError(
                f"{source}: expected layer {member.name!r} to have the config's diff id {wrong[0]}, found {found}"
            )


def _scan_layer(stream: IO[bytes], member: tarfile.TarInfo, source: Path) -> None:
    """Read a layer's tar headers: a sparse file would unpack far larger than the layer."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as layer:
            while (entry := layer.next()) is not None:
                layer.members.clear()  # type: ignore[attr-defined]  # keep no list of millions of headers
                if entry.issparse():
                    raise IntakeError(
                        f"{source}: layer {member.name!r} holds a sparse file {entry.name!r}; "
                        "expected regular files (a sparse file unpacks far larger than its layer)"
                    )
    except tarfile.TarError as error:
        raise IntakeError(
            f"{source}: expected layer {member.name!r} to be a tar, found broken data ({error})"
        ) from None


# --- the rewritten archive, the load ------------------------------------------------------------------


def _write_archive(tar: tarfile.TarFile, plan: _Plan, stream: IO[bytes]) -> None:
    """Manifest without tags, config, layers and nothing else, read from the checked `tar`."""
    config_name = f"{plan.digest.split(':', 1)[1]}.json"
    layer_names = [f"{diff_id.split(':', 1)[1]}/layer.tar" for diff_id in plan.diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": None, "Layers": layer_names}]).encode()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as out:
        _add_bytes(out, config_name, plan.config)
        for diff_id, member in sorted(plan.layers.items(), key=lambda item: item[1].offset_data):
            folder = diff_id.split(":", 1)[1]
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            out.addfile(info)
            info = tarfile.TarInfo(f"{folder}/layer.tar")
            info.size, info.mode = member.size, 0o644
            out.addfile(info, tar.extractfile(member))
        _add_bytes(out, "manifest.json", manifest)


def _add_bytes(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    out.addfile(info, io.BytesIO(data))


def _image_ids(client) -> set[str]:
    from docker.errors import DockerException

    try:
        return set(client.api.images(all=True, quiet=True))  # ids only: images.list() gets each one, racing removals
    except DockerException as error:
        raise IntakeError(f"cannot list the Docker engine's images: {error}") from error


def _load_checked(client, stream: IO[bytes], digest: str, before: set[str], source: Path) -> None:
    """Load `stream`; the engine must report exactly `digest`, else what the load added is removed."""
    from docker.errors import DockerException

    loaded: list = []
    try:
        loaded = client.images.load(stream)
        ids = sorted({image.id for image in loaded})
        if ids != [digest]:
            raise IntakeError(f"{source}: loading the image gave {ids}, expected exactly {digest}")
        if client.images.get(digest).id != digest:
            raise IntakeError(f"{source}: the engine does not report image {digest} after loading it")
    except BaseException as error:
        _remove_added(client, {digest} | {image.id for image in loaded}, before)
        if isinstance(error, DockerException):
            raise IntakeError(f"{source}: docker load refused the image ({error})") from error
        raise


def _remove_added(client, ids: set[str], before: set[str]) -> None:
    """Remove the images in `ids` that were not in the engine before: a refused load leaves none."""
    from docker.errors import DockerException

    for image_id in sorted(ids - before - {""}):
        try:
            client.images.remove(image_id, noprune=False)
        except DockerException:
            pass  # not there (the load failed before adding it), or in use by now


def _size(count: int) -> str:
    for unit, scale in (("GB", GB), ("MB", 1000**2), ("kB", 1000)):
        if count >= scale:
            return f"{count:,} bytes ({count / scale:.1f} {unit})"
    return f"{count:,} bytes"
