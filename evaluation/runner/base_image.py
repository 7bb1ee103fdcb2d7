"""An offline Debian bookworm Python 3.11 base image: debootstrap, a reproducible tar, `docker load`.

Air-gapped organizer and hospital machines reach no registry, so `FROM python:3.11-slim` cannot
be pulled there. This module builds an equivalent image from Debian packages and tags it
`spider/python-base:3.11-bookworm`, and also `python:3.11-slim` when no image has that tag yet
(a real one is never overwritten), so that participants' Dockerfiles build unchanged.

Reproducibility: the root tree is cleaned of files that differ from one run to the next (byte
code caches, logs, apt lists and caches, the host's resolv.conf and hostname, password-change
dates), tarred with sorted names, one fixed mtime and numeric owners, and loaded with
`docker load` from an image archive whose config carries that same fixed date. (`docker import`
would stamp the current time into the image config, and so give a new image id every run.)
Two builds from the same Debian packages give the same image id; the tar is cached under
`cache_dir`, so a rebuild without `--refresh` skips debootstrap and takes seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

from evaluation.runner.errors import BaseImageError

BASE_TAG = "spider/python-base:3.11-bookworm"
SLIM_TAG = "python:3.11-slim"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
# 2023-06-10, the release date of Debian 12 "bookworm": the mtime of every file and the image
# date. SOURCE_DATE_EPOCH, the reproducible-builds convention, overrides it.
DEFAULT_EPOCH = 1686355200
ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
)
CMD = ("python3",)
# Raise when clean_root() or the tar format changes: names the cached tar, so a stale one is not reused.
RECIPE_VERSION = 1
# Marks images this module made, so that a later build may move a tag it set itself.
BASE_LABEL = "org.spider-harness.base-image"
# Only the folders stay for these: the engine mounts its own /dev, /proc and /sys, and
# debootstrap's device nodes and mount points must not end up in a layer.
_EMPTIED_FOLDERS = ("dev", "proc", "sys", "run", "tmp", "var/tmp")
_DELETED = (
    "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "var/lib/dpkg/available-old",
    "etc/shadow-",
    "etc/gshadow-",
    "etc/passwd-",
    "etc/group-",
    "usr/lib/python3.11/EXTERNALLY-MANAGED",
)
_SLIM_LINKS = (
    ("python", "/usr/bin/python3"),
    ("python3", "/usr/bin/python3"),
    ("pip", "/usr/bin/pip3"),
    ("pip3", "/usr/bin/pip3"),
)
_EMPTIED_CONTENT_FOLDERS = ("var/lib/apt/lists", "var/cache/apt", "var/log")
_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclass(frozen=True)
class BaseImage:
    """The result of a build: the image id (sha256 digest of its config) and the tags it has."""

    image_id: str
    tags_made: tuple[str, ...]
    tags_kept: tuple[str, ...]
    rootfs_tar: Path
    debootstrap_seconds: float | None
    seconds: float


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return DEFAULT_EPOCH
    try:
        return int(value)
    except ValueError:
        raise BaseImageError(f"SOURCE_DATE_EPOCH must be seconds since 1970, found {value!r}") from None


def default_cache_dir() -> Path:
    """Where the rootfs tar is kept: $SPIDER_CACHE_DIR/base-image, else ~/.cache/spider/base-image."""
    root = os.environ.get("SPIDER_CACHE_DIR")
    if root:
        return Path(root) / "base-image"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spider" / "base-image"


def run_debootstrap(root: Path, *, mirror: str = DEFAULT_MIRROR, log: Path | None = None) -> None:
    """debootstrap a minimal bookworm with PACKAGES into `root` (needs root and the Debian mirror)."""
    executable = shutil.which("debootstrap") or next((p for p in ("/usr/sbin/debootstrap",) if Path(p).exists()), None)
    if executable is None:
        raise BaseImageError(
            "debootstrap is not installed: install Debian's package (`apt-get install debootstrap`, "
            "or `make engine`) and retry"
        )
    if os.geteuid() != 0:
        raise BaseImageError("debootstrap needs root: run `spider images base` as root (or with sudo)")
    command = [executable, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror]
    with open(log or os.devnull, "wb") as sink:
        completed = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        hint = f"; see {log}" if log else ""
        raise BaseImageError(
            f"debootstrap exited with code {completed.returncode} (mirror {mirror}){hint}. "
            "Check that the Debian mirror answers, or pass --mirror with a local one."
        )


def clean_root(root: Path, *, epoch: int) -> None:
    """Remove or normalise every file of a fresh debootstrap tree that varies between runs."""
    root = Path(root)
    for relative in _EMPTIED_FOLDERS + _EMPTIED_CONTENT_FOLDERS:
        folder = root / relative
        if folder.is_dir() and not folder.is_symlink():
            for entry in folder.iterdir():
                _remove(entry)
    for relative in _DELETED:
        path = root / relative
        if path.is_symlink() or path.exists():
            _remove(path)
    for walked, subfolders, _files in os.walk(root):
        for name in list(subfolders):
            if name == "__pycache__":
                shutil.rmtree(Path(walked) / name)
                subfolders.remove(name)
    # Host details that debootstrap copies in; the engine mounts its own at run time.
    _write_if_present(root / "etc/resolv.conf", "")
    _write_if_present(root / "etc/hostname", "localhost\n")
    # The date of the last password change, in days, is the day of the build.
    shadow = root / "etc/shadow"
    if shadow.is_file():
        lines = []
        for line in shadow.read_text(encoding="utf-8").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2]:
                fields[2] = str(epoch // 86400)
            lines.append(":".join(fields))
        shadow.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # python:3.11-slim has its interpreter in /usr/local/bin; some Dockerfiles name that path.
    local_bin = root / "usr/local/bin"
    if local_bin.is_dir():
        for name, target in _SLIM_LINKS:
            link = local_bin / name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(target)
    (root / "tmp").chmod(0o1777)
    if (root / "var/tmp").is_dir():
        (root / "var/tmp").chmod(0o1777)


def _write_if_present(path: Path, text: str) -> None:
    if path.is_symlink():
        path.unlink()
    if path.parent.is_dir():
        path.write_text(text, encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def write_rootfs_tar(root: Path, tar_path: Path, *, epoch: int) -> str:
    """Tar `root` with sorted names, mtime `epoch`, numeric owners; return the tar's sha256 digest.

    Hard links inside the tree stay hard links (same inode, the first name in sorted order
    holds the data). Sockets and fifos are skipped; device nodes never reach here (cleaned).
    """
    root = Path(root)
    tar_path = Path(tar_path)
    partial = tar_path.with_name(tar_path.name + ".partial")
    seen_inodes: dict[tuple[int, int], str] = {}
    with open(partial, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for relative in _sorted_tree(root):
            path = root / relative
            info = _tar_info(path, relative, epoch=epoch, seen_inodes=seen_inodes)
            if info is None:
                continue
            if info.isreg():
                with open(path, "rb") as data:
                    archive.addfile(info, data)
            else:
                archive.addfile(info)
    partial.replace(tar_path)
    return file_sha256(tar_path)


def _sorted_tree(root: Path) -> list[str]:
    """Every path below root, relative, sorted by components (so parents come before children)."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(root):
        base = os.path.relpath(folder, root)
        for name in subfolders + files:
            found.append(name if base == "." else f"{base}/{name}")
    return sorted(found, key=lambda p: p.split("/"))


def _tar_info(path: Path, relative: str, *, epoch: int, seen_inodes: dict) -> tarfile.TarInfo | None:
    status = os.lstat(path)
    mode = status.st_mode
    info = tarfile.TarInfo(relative)
    info.mode = stat.S_IMODE(mode)
    info.uid, info.gid = status.st_uid, status.st_gid
    info.uname = info.gname = ""
    info.mtime = epoch
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISREG(mode):
        key = (status.st_dev, status.st_ino)
        if status.st_nlink > 1 and key in seen_inodes:
            info.type = tarfile.LNKTYPE
            info.linkname = seen_inodes[key]
        else:
            if status.st_nlink > 1:
                seen_inodes[key] = relative
            info.type = tarfile.REGTYPE
            info.size = status.st_size
    else:
        return None
    return info


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_config(*, layer_digest: str, epoch: int, architecture: str | None = None) -> bytes:
    """The image config JSON (its sha256 is the image id), with sorted keys and no spaces."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "architecture": architecture or docker_architecture(),
        "os": "linux",
        "created": created,
        "config": {"Cmd": list(CMD), "Env": list(ENV), "Labels": {BASE_LABEL: SUITE}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [
            {
                "created": created,
                "created_by": f"spider images base: debootstrap --variant=minbase "
                f"--include={','.join(PACKAGES)} {SUITE}",
            }
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def docker_architecture() -> str:
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine)


def image_archive(tar_path: Path, config: bytes, *, tag: str) -> Callable[[IO[bytes]], None]:
    """A `docker load` archive (manifest.json, config, one layer) streamed from disk: the returned
    function writes it to a binary file."""
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}], sort_keys=True
    ).encode()

    def write(target: IO[bytes]) -> None:
        with tarfile.open(fileobj=target, mode="w|", format=tarfile.GNU_FORMAT) as archive:
            for name, data in (("manifest.json", manifest), (config_name, config)):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                archive.addfile(info, io.BytesIO(data))
            folder = tarfile.TarInfo("layer")
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(folder)
            info = tarfile.TarInfo("layer/layer.tar")
            info.size, info.mtime, info.mode = Path(tar_path).stat().st_size, 0, 0o644
            with open(tar_path, "rb") as layer:
                archive.addfile(info, layer)

    return write


def load_image(client, tar_path: Path, *, epoch: int, layer_digest: str, tag: str = BASE_TAG) -> str:
    """Load the rootfs tar as a one-layer image tagged `tag`; return its id ("sha256:...")."""
    config = image_config(layer_digest=layer_digest, epoch=epoch)
    expected_id = "sha256:" + hashlib.sha256(config).hexdigest()
    with tempfile.TemporaryFile(dir=Path(tar_path).parent) as archive:
        image_archive(tar_path, config, tag=tag)(archive)
        archive.seek(0)
        try:
            loaded = client.images.load(archive)
        except Exception as error:  # docker.errors.APIError and connection errors
            raise BaseImageError(f"docker load of the base image failed: {error}") from error
    ids = {image.id for image in loaded}
    if expected_id not in ids:
        raise BaseImageError(f"docker load gave image(s) {sorted(ids)}, expected {expected_id}")
    return expected_id


def tag_image(client, image_id: str, tag: str, *, keep_foreign: bool) -> bool:
    """Point `tag` at `image_id`; return False when it was left on another image.

    With keep_foreign, a tag held by an image this module did not make (a real
    python:3.11-slim, say) is never moved.
    """
    import docker.errors

    repository, _, name = tag.rpartition(":")
    try:
        existing = client.images.get(tag)
    except docker.errors.ImageNotFound:
        existing = None
    if existing is not None:
        if existing.id == image_id:
            return True
        if keep_foreign and not _made_here(existing.attrs):
            return False
    if not client.images.get(image_id).tag(repository, name):
        raise BaseImageError(f"could not tag {image_id} as {tag}")
    return True


def _made_here(attrs: dict) -> bool:
    """Whether an image is one this module built (images built FROM it inherit the label, but
    differ in layers, command or environment)."""
    config = attrs.get("Config") or {}
    return (
        BASE_LABEL in (config.get("Labels") or {})
        and len((attrs.get("RootFS") or {}).get("Layers") or []) == 1
        and list(config.get("Cmd") or []) == list(CMD)
        and list(config.get("Env") or []) == list(ENV)
    )


def build_base_image(
    client,
    *,
    cache_dir: Path | None = None,
    mirror: str = DEFAULT_MIRROR,
    refresh: bool = False,
    progress: Callable[[str], None] = lambda _message: None,
) -> BaseImage:
    """Build (or reuse the cached rootfs of) the base image, load it, tag it; see the module doc.

    `refresh` runs debootstrap again even when a cached tar exists (newer Debian packages).
    """
    started = time.monotonic()
    epoch = source_date_epoch()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tar_path = cache_dir / f"rootfs-{SUITE}-{epoch}-r{RECIPE_VERSION}.tar"
    digest_path = tar_path.with_name(tar_path.name + ".sha256")
    debootstrap_seconds = None
    if refresh or not (tar_path.is_file() and digest_path.is_file()):
        root = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=cache_dir))
        try:
            progress(f"debootstrap {SUITE} from {mirror} into {root} (about 1-2 minutes) ...")
            began = time.monotonic()
            run_debootstrap(root, mirror=mirror, log=cache_dir / "debootstrap.log")
            debootstrap_seconds = time.monotonic() - began
            clean_root(root, epoch=epoch)
            progress(f"writing {tar_path} ...")
            digest = write_rootfs_tar(root, tar_path, epoch=epoch)
            digest_path.write_text(digest + "\n", encoding="ascii")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    else:
        progress(f"reusing the cached root file system {tar_path} (pass --refresh to debootstrap again)")
    digest = digest_path.read_text(encoding="ascii").strip()
    progress("loading the image into the Docker engine ...")
    image_id = load_image(client, tar_path, epoch=epoch, layer_digest=digest, tag=BASE_TAG)
    made = [BASE_TAG]
    kept = []
    if tag_image(client, image_id, SLIM_TAG, keep_foreign=True):
        made.append(SLIM_TAG)
    else:
        kept.append(SLIM_TAG)
    return BaseImage(
        image_id=image_id,
        tags_made=tuple(made),
        tags_kept=tuple(kept),
        rootfs_tar=tar_path,
        debootstrap_seconds=debootstrap_seconds,
        seconds=time.monotonic() - started,
    )
