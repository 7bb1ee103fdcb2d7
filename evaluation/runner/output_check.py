"""Checks of a finished job's output folder, read from the host side by file descriptor.

The container chose the tree: its names, nesting, modes, links and special files. Every walk here
goes by descriptor (each folder opened relative to its parent's descriptor, so no path the
container could make too long is ever built), never follows a link, and is bounded: at most
`max_entries` entries, the byte limit, and `MAX_OUTPUT_DEPTH` nested folders (so at most that many
descriptors are open). Nothing here raises for what the container left: every OSError on its tree
becomes a verdict with a reason, and names in reasons go through challenge.text.shown.

Permissions: as root the runner reads whatever the mode bits say; a runner without root runs its
jobs as itself and so owns their files, and first gives itself read (and, for folders, search)
access to what it owns (never through a link). Whatever is still unreadable is not skipped: the
size walk reports it as a problem (the output counts as too large: its size is unknown), and the
output check calls the output invalid.

The one segmentation is read once, into a harness-owned copy beside the output folder
(`PREDICTION_FILE`, mode `PREDICTION_MODE`); the copy is what is validated and what the job's
prediction path names, so nothing later (scoring, rescoring, pages) reads the container's folder.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from challenge.contract import OUTPUT_FOLDER, OUTPUT_FORMATS_SHOWN, OUTPUT_ROOT, OUTPUT_SOCKET
from challenge.geometry import Geometry
from challenge.images import MAX_HEADER_BYTES
from challenge.statuses import JobStatus
from challenge.text import shown
from evaluation.errors import InvalidPredictionError
from evaluation.prediction import read_prediction
from evaluation.runner.errors import RunnerError
from evaluation.runner.output_formats import (
    MHD,
    TIFF_SUFFIXES,
    RefusedOutput,
    mhd_data_file,
    output_suffix,
    tiff_to_metaimage,
)

# Most files and folders an output may hold; more is treated like an output that is too large
# (walking millions of entries would itself be the attack).
MAX_OUTPUT_ENTRIES = 1000
# Most folders nested below /output (the socket folder is at 2); deeper counts as too large. It
# bounds the descriptors a walk holds open.
MAX_OUTPUT_DEPTH = 64
PREDICTION_FILE = "prediction.mha"
"""The harness-owned copy of the accepted segmentation, beside the job's output folder."""
PREDICTION_MODE = 0o444
_SHOWN = 5
_SHOWN_PATH = 200  # characters of a container-made path kept in a reason
_COPY_CHUNK = 1024**2
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer (only regular files get this far anyway).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# A folder that turned into something else, or went, between its listing and its opening.
_REPLACED = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
_READABLE_FOLDER, _READABLE_FILE = 0o500, 0o400


@dataclass(frozen=True)
class FolderSize:
    """Bytes and entries below a folder. `bytes` counts each regular file as the larger of its
    length and its allocated blocks, so neither sparse nor preallocated files hide. `complete` is
    False when the walk stopped early: past a bound, or at a `problem` (a part it could not read,
    folders nested too deep), whose reason then says why the size is unknown."""

    bytes: int
    entries: int
    complete: bool
    problem: str | None = None


@dataclass(frozen=True)
class OutputCheck:
    """The verdict on a job's output: SUCCEEDED with `path` (the harness-owned copy), or
    MISSING_OUTPUT, INVALID_OUTPUT or OUTPUT_TOO_LARGE with a reason (and no path)."""

    status: JobStatus
    reason: str
    path: Path | None = None


_Walk = Generator[tuple[tuple[str, ...], str, os.stat_result], None, None]
"""A walk's entries: (the names of the entry's folder below the root, its name, its lstat)."""


class _Unreadable(Exception):
    """A walk met a part of the tree it cannot read (or nested too deep); `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def measure_folder(
    folder: Path,
    *,
    stop_above_bytes: int | None = None,
    max_entries: int = MAX_OUTPUT_ENTRIES,
    max_depth: int = MAX_OUTPUT_DEPTH,
) -> FolderSize:
    """Size of `folder` without following links; stops early (complete=False) past either bound or
    at a part it cannot read (with `problem`). Never raises; a folder that does not exist is empty."""
    total = entries = 0
    try:
        root_fd = _open_folder(os.fspath(folder), None)
    except FileNotFoundError:
        return FolderSize(bytes=0, entries=0, complete=True)
    except OSError as error:
        return FolderSize(bytes=0, entries=0, complete=False, problem=_unreadable_folder((), error))
    walk = _entries(root_fd, max_depth)
    try:
        for _parts, _name, status in walk:
            entries += 1
            if stat.S_ISREG(status.st_mode):
                total += max(status.st_size, status.st_blocks * 512)
            if entries > max_entries or (stop_above_bytes is not None and total > stop_above_bytes):
                return FolderSize(bytes=total, entries=entries, complete=False)
    except _Unreadable as unreadable:
        return FolderSize(bytes=total, entries=entries, complete=False, problem=unreadable.reason)
    except OSError as error:  # a guard: the walk handles its own calls' errors
        return FolderSize(bytes=total, entries=entries, complete=False, problem=_unreadable_folder((), error))
    finally:
        walk.close()
        os.close(root_fd)
    return FolderSize(bytes=total, entries=entries, complete=True)


def output_too_large(size: FolderSize, *, limit_bytes: int, max_entries: int = MAX_OUTPUT_ENTRIES) -> str | None:
    """The reason an output breaks the size limits (or could not be measured), or None when it is within them."""
    if size.bytes > limit_bytes:
        return (
            f"/output grew past the limit of {_mib(limit_bytes)} (at least {_mib(size.bytes)} when the job was "
            f"stopped); write only the one segmentation to {OUTPUT_FOLDER}/"
        )
    if size.entries > max_entries:
        return f"/output holds more than {max_entries} files and folders; write only the one segmentation"
    return size.problem


def check_output(
    output_root: Path,
    expected: Geometry,
    *,
    copy_to: Path | None = None,
    limit_bytes: int | None = None,
    max_entries: int = MAX_OUTPUT_ENTRIES,
) -> OutputCheck:
    """Find exactly one regular image in the output socket's folder (.mha, .mhd with its data file,
    or .tif: challenge.contract.OUTPUT_SUFFIXES), copy it as one .mha, and check the copy against
    `expected`.

    `output_root` is the host folder that was mounted at /output. Nothing is followed: a link
    anywhere on the way (folders included) makes the output invalid. The file is read once, by
    descriptor, into `copy_to` (default: `PREDICTION_FILE` beside `output_root`, i.e. in the job's
    folder), a new file of the harness with mode `PREDICTION_MODE`; a file longer than
    `limit_bytes` is not copied. The copy is validated and is the verdict's `path`; it is removed
    when the output is rejected.

    Never raises for what the container left (every OSError on its tree is a verdict); raises
    RunnerError only when the harness cannot write its own copy (its disk, not the container).
    """
    output_root = Path(output_root)
    copy_to = Path(copy_to) if copy_to is not None else output_root.parent / PREDICTION_FILE
    try:
        root_fd = _open_folder(os.fspath(output_root), None)
    except FileNotFoundError:
        return OutputCheck(JobStatus.MISSING_OUTPUT, f"{OUTPUT_ROOT}/ does not exist; " + _expected_output())
    except OSError as error:
        return OutputCheck(JobStatus.INVALID_OUTPUT, _cannot_read_folder(OUTPUT_ROOT, error))
    opened = [root_fd]
    try:
        return _check_socket(opened, expected, copy_to, limit_bytes, max_entries)
    except OSError as error:  # a guard: every call on the container's tree handles its own errors
        return OutputCheck(JobStatus.INVALID_OUTPUT,
                           f"the runner could not read /output ({_why(error)}); " + _expected_output())
    finally:
        for fd in opened:
            os.close(fd)


def remove_output(folder: Path) -> None:
    """Delete `folder` and everything below it without following links, at any depth and path
    length (a folder nested deeper than MAX_OUTPUT_DEPTH is first moved up into `folder` under a
    random name, so few descriptors are open). Never raises: what cannot be removed stays."""
    try:
        root_fd = _open_folder(os.fspath(folder), None, writable=True)
    except OSError:
        return
    # (descriptor, name in the parent folder, names in it that could not be removed)
    frames: list[tuple[int, str, set[str]]] = [(root_fd, "", set())]
    try:
        while frames:
            fd, name_in_parent, failed = frames[-1]
            files, subfolder = _next_entries(fd, failed)
            for name in files:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except OSError:
                    failed.add(name)
            if subfolder is not None:
                try:
                    if len(frames) > MAX_OUTPUT_DEPTH:
                        os.rename(subfolder, f".spider-removed-{uuid.uuid4().hex}", src_dir_fd=fd, dst_dir_fd=root_fd)
                    else:
                        frames.append((_open_folder(subfolder, fd, writable=True), subfolder, set()))
                except OSError:
                    failed.add(subfolder)
            elif not files:  # nothing left but what could not be removed
                frames.pop()
                if frames:
                    os.close(fd)
                    parent_fd, _parent_name, parent_failed = frames[-1]
                    try:
                        os.rmdir(name_in_parent, dir_fd=parent_fd)
                    except OSError:
                        parent_failed.add(name_in_parent)
    except OSError:
        pass
    finally:
        for fd, _name, _failed in frames[1:]:
            os.close(fd)
        os.close(root_fd)
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _next_entries(fd: int, failed: set[str], batch: int = 1000) -> tuple[list[str], str | None]:
    """Up to `batch` non-folder names in the folder `fd` (skipping `failed`), or the first subfolder."""
    files: list[str] = []
    try:
        with os.scandir(fd) as iterator:
            for entry in iterator:
                if entry.name in failed:
                    continue
                try:
                    is_folder = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_folder = False
                if is_folder:
                    return files, entry.name
                files.append(entry.name)
                if len(files) >= batch:
                    break
    except OSError:
        pass
    return files, None


def _check_socket(opened: list[int], expected: Geometry, copy_to: Path, limit_bytes: int | None,
                  max_entries: int) -> OutputCheck:
    """The check below the open /output descriptor `opened[0]`; every descriptor it opens is appended."""
    fd, shown_folder = opened[0], OUTPUT_ROOT
    for part in OUTPUT_SOCKET.relative_path.split("/"):
        parent, shown_folder = shown_folder, shown_folder / part
        try:
            kind = _kind(part, fd)
        except OSError as error:
            return OutputCheck(JobStatus.INVALID_OUTPUT, _cannot_read_folder(parent, error))
        if kind == "missing":
            return OutputCheck(JobStatus.MISSING_OUTPUT, f"{shown_folder}/ does not exist; " + _expected_output())
        if kind != "folder":
            return OutputCheck(
                JobStatus.INVALID_OUTPUT, f"{shown_folder} is a {kind}, not a folder; " + _expected_output()
            )
        try:
            fd = _open_folder(part, fd)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return OutputCheck(JobStatus.MISSING_OUTPUT, f"{shown_folder}/ does not exist; " + _expected_output())
            if error.errno == errno.ELOOP:
                return OutputCheck(JobStatus.INVALID_OUTPUT,
                                   f"{shown_folder} is a symbolic link, not a folder; " + _expected_output())
            return OutputCheck(JobStatus.INVALID_OUTPUT, _cannot_read_folder(shown_folder, error))
        opened.append(fd)
    try:
        names = sorted(_names(fd, max_entries + 1))
    except OSError as error:
        return OutputCheck(JobStatus.INVALID_OUTPUT, _cannot_read_folder(shown_folder, error))
    if len(names) > max_entries:
        return OutputCheck(JobStatus.OUTPUT_TOO_LARGE,
                           f"{OUTPUT_FOLDER}/ holds more than {max_entries} files and folders; "
                           "write only the one segmentation")
    images = [name for name in names if output_suffix(name) is not None]
    if not images:
        found = f" (found: {_list(names)})" if names else ""
        elsewhere = _images_elsewhere(opened[0], max_entries)
        hint = f"; image files elsewhere in /output: {_list(elsewhere)}" if elsewhere else ""
        return OutputCheck(
            JobStatus.MISSING_OUTPUT,
            f"no image file ({OUTPUT_FORMATS_SHOWN}) in {OUTPUT_FOLDER}/{found}{hint}; " + _expected_output()
        )
    if len(images) > 1:
        return OutputCheck(
            JobStatus.INVALID_OUTPUT,
            f"found {len(images)} image files in {OUTPUT_FOLDER}/ ({_list(images)}); write exactly one",
        )
    if shown(images[0]) != images[0]:
        return OutputCheck(
            JobStatus.INVALID_OUTPUT,
            f"the file name '{shown(images[0])}' is not printable UTF-8 text; name the segmentation e.g. output.mha",
        )
    return _copy_and_check(fd, images[0], expected, copy_to, limit_bytes)


def _copy_and_check(folder_fd: int, name: str, expected: Geometry, copy_to: Path,
                    limit_bytes: int | None) -> OutputCheck:
    """Copy the regular file `name` (a printable name) of the folder `folder_fd` to `copy_to` and
    validate the copy."""
    def invalid(reason: str, status: JobStatus = JobStatus.INVALID_OUTPUT) -> OutputCheck:
        return OutputCheck(status, reason)

    gone = invalid(f"{OUTPUT_FOLDER}/{name} disappeared while the runner read it; " + _expected_output(),
                   JobStatus.MISSING_OUTPUT)
    link = invalid(f"{name} is a symbolic link; write a regular file")
    try:
        kind = _kind(name, folder_fd)
    except OSError as error:
        return invalid(_cannot_read_folder(OUTPUT_FOLDER, error))
    if kind == "missing":
        return gone
    if kind == "symbolic link":
        return link
    if kind != "file":
        return invalid(f"{name} is a {kind}, not a regular file; write the segmentation as a regular file")
    try:
        fd = _open_file(name, folder_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return gone
        if error.errno == errno.ELOOP:
            return link
        return invalid(f"the runner cannot read {OUTPUT_FOLDER}/{name} ({_why(error)}); write the segmentation "
                       "as a regular file that its owner can read")
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            return invalid(f"{name} is not a regular file; write the segmentation as a regular file")
        if limit_bytes is not None and status.st_size > limit_bytes:
            return invalid(f"{OUTPUT_FOLDER}/{name} is larger than the output limit of {_mib(limit_bytes)}",
                           JobStatus.OUTPUT_TOO_LARGE)
        suffix = output_suffix(name)
        staged = copy_to.with_suffix(".tif") if suffix in TIFF_SUFFIXES else copy_to
        if suffix == MHD:
            problem = _copy_mhd(fd, folder_fd, name, copy_to, limit_bytes)
        else:
            problem = _copy(fd, staged, limit_bytes)
    except RefusedOutput as refused:
        return invalid(refused.reason)
    finally:
        os.close(fd)
    if isinstance(problem, OSError):
        return invalid(f"the runner cannot read {OUTPUT_FOLDER}/{name} ({_why(problem)}); write the segmentation "
                       "as a regular file that its owner can read")
    if problem == "too large":
        return invalid(f"{OUTPUT_FOLDER}/{name} grew past the output limit of {_mib(limit_bytes or 0)}",
                       JobStatus.OUTPUT_TOO_LARGE)
    note = ""
    if staged != copy_to:
        try:
            tiff_to_metaimage(staged, expected, copy_to, name=name, mode=PREDICTION_MODE)
        except RefusedOutput as refused:
            return invalid(refused.reason)
        finally:
            _remove_copy(staged)
        note = " (a TIFF holds no origin or direction: taken on the input's grid)"
    try:
        read_prediction(copy_to, expected)
    except InvalidPredictionError as error:
        _remove_copy(copy_to)
        return invalid(shown(error.reason.replace(copy_to.name, name)))
    return OutputCheck(JobStatus.SUCCEEDED, f"wrote a valid segmentation {name}{note}", copy_to)


def _copy_mhd(header_fd: int, folder_fd: int, name: str, copy_to: Path, limit_bytes: int | None
              ) -> OSError | str | None:
    """Copy a .mhd header and the data file it names (in the same folder, never followed) into the
    one-file .mha `copy_to`; as `_copy`, and RefusedOutput for a header that names no plain file."""
    head = _read_head(header_fd)
    header, data_name = mhd_data_file(head, name)
    if data_name is None:  # the voxels follow the header in this file: a .mha by another name
        os.lseek(header_fd, 0, os.SEEK_SET)
        return _copy(header_fd, copy_to, limit_bytes)
    if os.fstat(header_fd).st_size > len(head):
        raise RefusedOutput(f"{name}: expected a header of at most {MAX_HEADER_BYTES // 1024} KiB before its data "
                            "file, found more")
    shown_data = f"{OUTPUT_FOLDER}/{shown(data_name, limit=100)}"
    try:
        data_fd = _open_file(data_name, folder_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise RefusedOutput(f"{name} names its data file {shown_data}, which does not exist; write both "
                                "files to the same folder") from None
        if error.errno == errno.ELOOP:
            raise RefusedOutput(f"{shown_data} (the data file of {name}) is a symbolic link; write a regular "
                                "file") from None
        return error
    try:
        status = os.fstat(data_fd)
        if not stat.S_ISREG(status.st_mode):
            raise RefusedOutput(f"{shown_data} (the data file of {name}) is not a regular file")
        return _copy(data_fd, copy_to, limit_bytes, prefix=header)
    finally:
        os.close(data_fd)


def _read_head(fd: int) -> bytes:
    """Up to MAX_HEADER_BYTES from the start of an open file."""
    chunks, left = [], MAX_HEADER_BYTES
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _copy(source_fd: int, copy_to: Path, limit_bytes: int | None, *, prefix: bytes = b"") -> OSError | str | None:
    """Copy `prefix` and the open file to a new harness file `copy_to` (mode PREDICTION_MODE); an
    error reading the source, or "too large" past `limit_bytes`, is returned (and no copy is left).
    Raises RunnerError when the copy cannot be written."""
    _remove_copy(copy_to)  # a copy from an earlier check of the same folder
    try:
        target = os.open(copy_to, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise RunnerError(f"cannot write the harness's copy of the prediction {copy_to}: {_why(error)}") from error
    problem: OSError | str | None = None
    try:
        copied = len(prefix)
        view = memoryview(prefix)
        while view:
            view = view[os.write(target, view):]
        while True:
            try:
                chunk = os.read(source_fd, _COPY_CHUNK)
            except OSError as error:
                problem = error
                break
            if not chunk:
                break
            copied += len(chunk)
            if limit_bytes is not None and copied > limit_bytes:
                problem = "too large"
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(target, view):]
        os.fchmod(target, PREDICTION_MODE)
    except OSError as error:
        os.close(target)
        _remove_copy(copy_to)
        raise RunnerError(f"cannot write the harness's copy of the prediction {copy_to}: {_why(error)}") from error
    os.close(target)
    if problem is not None:
        _remove_copy(copy_to)
    return problem


def _remove_copy(copy_to: Path) -> None:
    try:
        copy_to.unlink(missing_ok=True)
    except OSError as error:
        raise RunnerError(f"cannot remove {copy_to}: {_why(error)}") from error


def _open_folder(name: str, dir_fd: int | None, *, writable: bool = False) -> int:
    """A descriptor of the folder `name` (relative to `dir_fd`; a link is not followed: ELOOP). Where
    the runner owns the folder it first gives itself read and search (and with `writable`, write)
    access. Raises OSError."""
    bits = _READABLE_FOLDER | (0o200 if writable else 0)
    try:
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        if not _grant_owner(name, dir_fd, bits):
            raise
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    try:
        status = os.fstat(fd)
        if status.st_uid == os.geteuid() and status.st_mode & bits != bits:
            os.fchmod(fd, stat.S_IMODE(status.st_mode) | bits)
    except OSError:
        pass  # what stays unreadable is reported where it is read
    return fd


def _open_file(name: str, dir_fd: int) -> int:
    """A read descriptor of the file `name` in `dir_fd` (not followed if a link), made readable first
    where the runner owns it. Raises OSError."""
    try:
        return os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        if not _grant_owner(name, dir_fd, _READABLE_FILE):
            raise
        return os.open(name, _FILE_FLAGS, dir_fd=dir_fd)


def _grant_owner(name: str, dir_fd: int | None, bits: int) -> bool:
    """Add `bits` to the mode of the folder or regular file `name` where the runner owns it, without
    following a link (through an O_PATH descriptor); True when it did."""
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        status = os.fstat(fd)
        if status.st_uid != os.geteuid() or not (stat.S_ISDIR(status.st_mode) or stat.S_ISREG(status.st_mode)):
            return False
        os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(status.st_mode) | bits)  # the inode itself, never a link
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _entries(root_fd: int, max_depth: int) -> _Walk:
    """Every entry below the folder `root_fd`, depth first, links not followed: (the names of its
    folder below the root, its name, its lstat). Entries that vanish meanwhile are left out.
    Raises _Unreadable for a folder that cannot be read and for folders nested deeper than
    `max_depth`. Holds at most `max_depth` + 1 descriptors of its own (closed when it is closed)."""
    frames: list[tuple[int, tuple[str, ...], list[str]]] = [(root_fd, (), [])]
    try:
        yield from _scan(*frames[0])
        while frames:
            fd, parts, pending = frames[-1]
            if not pending:
                frames.pop()
                if frames:  # the root descriptor is the caller's
                    os.close(fd)
                continue
            name = pending.pop()
            if len(parts) >= max_depth:
                raise _Unreadable(
                    f"/output holds folders nested more than {max_depth} levels deep; write only the one "
                    f"segmentation to {OUTPUT_FOLDER}/"
                )
            try:
                child = _open_folder(name, fd)
            except OSError as error:
                if error.errno in _REPLACED:
                    continue  # gone, or now a file or link (counted when seen as one)
                raise _Unreadable(_unreadable_folder(parts + (name,), error)) from None
            frames.append((child, parts + (name,), []))
            yield from _scan(*frames[-1])
    finally:
        for fd, _parts, _pending in frames[1:]:
            os.close(fd)


def _scan(fd: int, parts: tuple[str, ...], subfolders: list[str]) -> _Walk:
    """The entries of the open folder `fd` (see _entries); its subfolders' names go to `subfolders`."""
    try:
        iterator = os.scandir(fd)
    except OSError as error:
        raise _Unreadable(_unreadable_folder(parts, error)) from None
    with iterator:
        while True:
            try:
                entry = next(iterator)
            except StopIteration:
                return
            except OSError as error:
                raise _Unreadable(_unreadable_folder(parts, error)) from None
            try:
                status = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:  # the folder cannot be searched
                raise _Unreadable(_unreadable_folder(parts, error)) from None
            if stat.S_ISDIR(status.st_mode):
                subfolders.append(entry.name)
            yield parts, entry.name, status


def _names(fd: int, limit: int) -> list[str]:
    """Up to `limit` names in the open folder `fd`. Raises OSError."""
    names: list[str] = []
    with os.scandir(fd) as iterator:
        for entry in iterator:
            names.append(entry.name)
            if len(names) >= limit:
                break
    return names


def _kind(name: str, dir_fd: int) -> str:
    """What `name` in the folder `dir_fd` is, not following a link. Raises OSError but for a missing name."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return "special file"


def _images_elsewhere(root_fd: int, max_entries: int) -> list[str]:
    """A few image files anywhere in /output (a hint only: a walk that cannot go on ends it)."""
    found: list[str] = []
    walk = _entries(root_fd, MAX_OUTPUT_DEPTH)
    try:
        for count, (parts, name, status) in enumerate(walk):
            if count >= max_entries or len(found) > _SHOWN:
                break
            if not stat.S_ISDIR(status.st_mode) and output_suffix(name) is not None:
                found.append(_shown_path(parts + (name,)))
    except (_Unreadable, OSError):
        pass
    finally:
        walk.close()
    return sorted(found)


def _shown_path(parts: tuple[str, ...]) -> str:
    """/output/<parts>, made printable and cut (the names are the container's)."""
    return shown("/".join((str(OUTPUT_ROOT), *parts)), limit=_SHOWN_PATH)


def _unreadable_folder(parts: tuple[str, ...], error: OSError) -> str:
    return (f"/output holds a folder the runner cannot read: {_shown_path(parts)} ({_why(error)}); leave every "
            f"file and folder in /output readable and write only the one segmentation to {OUTPUT_FOLDER}/")


def _cannot_read_folder(folder: PurePosixPath, error: OSError) -> str:
    return f"the runner cannot read the folder {folder}/ ({_why(error)}); " + _expected_output()


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _expected_output() -> str:
    return f"write exactly one segmentation ({OUTPUT_FORMATS_SHOWN}) to {OUTPUT_FOLDER}/"


def _list(names: list[str]) -> str:
    """Up to a few container-chosen names, each made printable (challenge.text.shown)."""
    listed = ", ".join(shown(name, limit=100) for name in names[:_SHOWN])
    return listed + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**2:.0f} MiB"
