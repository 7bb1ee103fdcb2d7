"""Output checks on host folders: exactly one regular image (.mha, .mhd + data file, .tif) on the input grid,
sizes without links."""

from __future__ import annotations

import errno
import os
import pickle
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge.contract import OUTPUT_SOCKET
from challenge.geometry import Geometry
from challenge.statuses import JobStatus
from evaluation.runner.output_check import (
    MAX_OUTPUT_DEPTH,
    PREDICTION_FILE,
    check_output,
    measure_folder,
    output_too_large,
    remove_output,
)

SHAPE_ZYX = (9, 28, 20)
SPACING_XYZ = (0.62, 0.55, 3.3)  # as make_image's default: uneven, with a rotated direction


@pytest.fixture
def expected(make_image) -> Geometry:
    return Geometry.of(make_image(np.zeros(SHAPE_ZYX, np.uint8)))


@pytest.fixture
def output_root(tmp_path) -> Path:
    root = tmp_path / "output"
    (root / OUTPUT_SOCKET.relative_path).mkdir(parents=True)
    return root


def _socket(root: Path) -> Path:
    return root / OUTPUT_SOCKET.relative_path


def test_one_valid_segmentation_succeeds(output_root, expected, make_image, mask_array):
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(_socket(output_root) / "seg.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.SUCCEEDED
    # the verdict names the harness's copy beside the output folder, not the container's file
    assert checked.path == output_root.parent / PREDICTION_FILE
    assert (output_root.parent / PREDICTION_FILE).read_bytes() == (_socket(output_root) / "seg.mha").read_bytes()


def test_empty_folder_is_missing_output(output_root, expected):
    (_socket(output_root) / "notes.txt").write_text("x")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "no image file (.mha, .mhd (+ its data file) or .tif) in /output/images/sagittal-spine-mr-segmentation/" \
        in checked.reason
    assert "notes.txt" in checked.reason


def test_missing_output_points_at_a_misplaced_file(output_root, expected, make_image, mask_array):
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(output_root / "seg.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "/output/seg.mha" in checked.reason


def test_missing_socket_folder_is_missing_output(tmp_path, expected):
    (tmp_path / "output").mkdir()
    checked = check_output(tmp_path / "output", expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "does not exist" in checked.reason


def test_two_files_are_invalid(output_root, expected, make_image, mask_array):
    for name in ("a.mha", "b.mha"):
        sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(_socket(output_root) / name))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "found 2 image files" in checked.reason and "a.mha, b.mha" in checked.reason


def test_a_link_to_a_valid_file_is_invalid(output_root, expected, tmp_path, make_image, mask_array):
    target = tmp_path / "elsewhere.mha"
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(target))
    os.symlink(target, _socket(output_root) / "seg.mha")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "symbolic link" in checked.reason


def test_a_linked_socket_folder_is_invalid(tmp_path, expected, make_image, mask_array):
    real = tmp_path / "real"
    real.mkdir()
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(real / "seg.mha"))
    root = tmp_path / "output"
    (root / "images").mkdir(parents=True)
    os.symlink(real, root / OUTPUT_SOCKET.relative_path)
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "is a symbolic link, not a folder" in checked.reason


@pytest.mark.parametrize(
    "breach, reason",
    [
        ("spacing", "spacing (mm): expected (0.62, 0.55, 3.3), found (1, 1, 1)"),
        ("size", "size: expected (20, 28, 9), found (21, 28, 9)"),
        ("float", "integer label image"),
        ("unknown-label", "not SPIDER labels: 42"),
    ],
)
def test_contract_breaches_are_invalid(output_root, expected, make_image, mask_array, breach, reason):
    array, spacing = mask_array(SHAPE_ZYX), SPACING_XYZ
    if breach == "spacing":
        spacing = (1.0, 1.0, 1.0)
    elif breach == "size":
        array = mask_array((9, 28, 21))
    elif breach == "float":
        array = array.astype(np.float32)
    else:
        array = np.full(SHAPE_ZYX, 42, np.uint8)
    sitk.WriteImage(make_image(array, spacing=spacing), str(_socket(output_root) / "seg.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert reason in checked.reason
    assert checked.path is None and not (output_root.parent / PREDICTION_FILE).exists()  # a rejected copy goes


def test_measure_counts_sparse_files_by_length_and_skips_links(tmp_path):
    (tmp_path / "sub").mkdir()
    with open(tmp_path / "sub" / "sparse.bin", "wb") as stream:
        stream.truncate(10 * 1024**2)
    (tmp_path / "small.txt").write_bytes(b"x" * 100)
    big_outside = tmp_path.parent / f"{tmp_path.name}-outside.bin"
    big_outside.write_bytes(b"y" * 5000)
    os.symlink(big_outside, tmp_path / "link.bin")
    small = os.stat(tmp_path / "small.txt")
    size = measure_folder(tmp_path)
    assert size.complete
    assert size.entries == 4  # sub, sparse.bin, small.txt, link.bin
    # the sparse file counts by its length, the small one by its allocated block; the link adds nothing
    assert size.bytes == 10 * 1024**2 + max(100, small.st_blocks * 512)


def test_measure_stops_early_past_a_bound(tmp_path):
    for index in range(30):
        (tmp_path / f"f{index}").write_bytes(b"z")
    size = measure_folder(tmp_path, max_entries=10)
    assert not size.complete and size.entries == 11
    assert "more than 10 files" in str(output_too_large(size, limit_bytes=10**9, max_entries=10))
    assert output_too_large(measure_folder(tmp_path), limit_bytes=10**9) is None
    too_big = measure_folder(tmp_path, stop_above_bytes=1)
    assert "grew past the limit" in str(output_too_large(too_big, limit_bytes=1))


def test_a_file_name_that_is_not_utf8_is_invalid_with_a_printable_reason(output_root, expected, make_image,
                                                                         mask_array):
    name = os.fsdecode(b"seg\xff.mha")
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(_socket(output_root) / "tmp.mha"))
    os.rename(_socket(output_root) / "tmp.mha", os.path.join(os.fsencode(_socket(output_root)), b"seg\xff.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "seg\\xff.mha" in checked.reason and "not printable UTF-8" in checked.reason
    checked.reason.encode("utf-8")
    assert name not in checked.reason


def test_names_listed_in_a_reason_are_printable(output_root, expected):
    (_socket(output_root) / "notes\x01\n.txt").write_text("x")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "notes .txt" in checked.reason and "\x01" not in checked.reason


# --- A hostile tree: the walk goes by descriptor, never follows a link, and never raises ----------

NOBODY = 65534
LONG = "n" * 250  # a name near NAME_MAX: a chain of them soon passes PATH_MAX (4096)


def _chain(top: Path, names: list[str], *, leaf: bytes | None = None) -> None:
    """Folders `names` nested inside each other below `top`, made by descriptor (no long path is
    built); a file `leaf` with those bytes at the bottom."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        if leaf is not None:
            handle = os.open("leaf.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(handle, leaf)
            os.close(handle)
    finally:
        os.close(fd)


def _write_seg(output_root: Path, make_image, mask_array, name: str = "seg.mha") -> Path:
    path = _socket(output_root) / name
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(path))
    return path


def test_a_chain_of_long_names_past_path_max_is_measured_and_checked(output_root, expected, make_image,
                                                                      mask_array):
    names = [LONG] * 20  # 20 * 251 bytes: past PATH_MAX, within MAX_OUTPUT_DEPTH
    assert len(names) * (len(LONG) + 1) > os.pathconf("/", "PC_PATH_MAX")
    _chain(output_root, names, leaf=b"x" * 3000)
    _chain(_socket(output_root), names)
    seg = _write_seg(output_root, make_image, mask_array)
    size = measure_folder(output_root)
    assert size.complete and size.problem is None
    assert size.entries == 1 + 1 + 20 + 1 + 20 + 1  # images, socket, chain, leaf, chain in the socket, seg.mha
    assert size.bytes >= 3000 + seg.stat().st_size
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.SUCCEEDED, checked.reason
    remove_output(output_root)
    assert not output_root.exists()


def test_a_misplaced_segmentation_deep_down_a_long_chain_is_named_in_the_hint(output_root, expected):
    _chain(output_root, [LONG] * 18)
    fd = os.open(output_root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(18):
        child = os.open(LONG, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("deep.mha", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "image files elsewhere in /output: /output/nnnn" in checked.reason and checked.reason.isprintable()
    assert len(checked.reason) < 1000  # the long path is cut


def test_folders_nested_deeper_than_the_limit_count_as_too_large_and_are_removed(tmp_path):
    root = tmp_path / "output"
    root.mkdir()
    _chain(root, ["d"] * (3 * MAX_OUTPUT_DEPTH + 5), leaf=b"x")
    size = measure_folder(root)
    assert not size.complete
    reason = output_too_large(size, limit_bytes=10**9)
    assert reason is not None and reason == size.problem
    assert f"nested more than {MAX_OUTPUT_DEPTH} levels deep" in reason
    assert measure_folder(root, max_depth=10**4).complete  # the bound is the walk's own
    remove_output(root)  # moves deep parts up instead of holding a descriptor per level
    assert not root.exists()


def test_the_walk_holds_few_descriptors(tmp_path, monkeypatch):
    root = tmp_path / "output"
    root.mkdir()
    _chain(root, ["d"] * (MAX_OUTPUT_DEPTH - 1))
    before = len(os.listdir("/proc/self/fd"))
    seen = []
    real_open = os.open

    def counting_open(*args, **kwargs):
        seen.append(len(os.listdir("/proc/self/fd")))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    assert measure_folder(root).complete
    monkeypatch.undo()
    assert max(seen) - before <= MAX_OUTPUT_DEPTH + 2
    assert len(os.listdir("/proc/self/fd")) == before  # all closed again


def test_a_symbolic_link_loop_is_neither_followed_nor_fatal(output_root, expected):
    socket = _socket(output_root)
    os.symlink("loop.mha", socket / "loop.mha")  # a link to itself
    os.symlink("b", output_root / "a")
    os.symlink("a", output_root / "b")
    size = measure_folder(output_root)
    assert size.complete and size.entries == 5 and size.problem is None
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "loop.mha is a symbolic link" in checked.reason


def test_a_looping_socket_folder_is_invalid(tmp_path, expected):
    root = tmp_path / "output"
    (root / "images").mkdir(parents=True)
    os.symlink("other", root / OUTPUT_SOCKET.relative_path)
    os.symlink(OUTPUT_SOCKET.slug, root / "images" / "other")
    assert measure_folder(root).complete
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "sagittal-spine-mr-segmentation is a symbolic link, not a folder" in checked.reason


def test_a_fifo_named_like_the_segmentation_is_invalid_and_does_not_block(output_root, expected):
    os.mkfifo(_socket(output_root) / "seg.mha")
    size = measure_folder(output_root)
    assert size.complete and size.bytes == 0
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "seg.mha is a special file, not a regular file" in checked.reason
    assert not (output_root.parent / PREDICTION_FILE).exists()


def test_a_folder_named_like_the_segmentation_is_invalid(output_root, expected):
    (_socket(output_root) / "seg.mha").mkdir()
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT and "seg.mha is a folder, not a regular file" in checked.reason


def test_the_copy_is_the_harness_s_read_only_file_with_the_original_bytes(output_root, expected, make_image,
                                                                          mask_array, tmp_path):
    seg = _write_seg(output_root, make_image, mask_array)
    copy_to = tmp_path / "job" / PREDICTION_FILE
    copy_to.parent.mkdir()
    checked = check_output(output_root, expected, copy_to=copy_to, limit_bytes=10**8)
    assert checked.status is JobStatus.SUCCEEDED and checked.path == copy_to
    status = os.lstat(copy_to)
    assert stat.S_ISREG(status.st_mode) and stat.S_IMODE(status.st_mode) == 0o444
    assert status.st_uid == os.geteuid()
    assert status.st_ino != seg.stat().st_ino
    assert copy_to.read_bytes() == seg.read_bytes()
    # what the container does to its folder afterwards changes nothing the harness reads
    seg.write_bytes(b"changed")
    assert copy_to.read_bytes() != b"changed"
    # a second check of the same folder replaces the copy
    assert check_output(output_root, expected, copy_to=copy_to).status is JobStatus.INVALID_OUTPUT
    assert not copy_to.exists()


def test_a_segmentation_over_the_limit_is_not_copied(output_root, expected, make_image, mask_array):
    seg = _write_seg(output_root, make_image, mask_array)
    checked = check_output(output_root, expected, limit_bytes=seg.stat().st_size - 1)
    assert checked.status is JobStatus.OUTPUT_TOO_LARGE and "larger than the output limit" in checked.reason
    assert not (output_root.parent / PREDICTION_FILE).exists()


def test_a_rejected_copy_is_named_by_the_container_s_file(output_root, expected):
    (_socket(output_root) / "mine.mha").write_bytes(b"not an image\n")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert checked.reason.startswith("mine.mha: ") and PREDICTION_FILE not in checked.reason
    assert not (output_root.parent / PREDICTION_FILE).exists()


def test_a_file_that_vanishes_before_it_is_opened_is_missing(output_root, expected, make_image, mask_array,
                                                             monkeypatch):
    _write_seg(output_root, make_image, mask_array)
    real_open = os.open

    def vanishing_open(path, flags, mode=0o777, *, dir_fd=None):
        if path == "seg.mha" and dir_fd is not None:
            os.unlink(path, dir_fd=dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", vanishing_open)
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT and "disappeared while the runner read it" in checked.reason


def test_entries_that_vanish_mid_walk_are_left_out(tmp_path, monkeypatch):
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "inside.bin").write_bytes(b"x" * 100)
    (tmp_path / "also-gone.bin").write_bytes(b"y" * 100)
    (tmp_path / "stays.bin").write_bytes(b"z")
    real_open, real_scandir = os.open, os.scandir

    def vanishing_open(path, flags, mode=0o777, *, dir_fd=None):
        if path == "gone" and dir_fd is not None:
            (tmp_path / "gone" / "inside.bin").unlink()
            (tmp_path / "gone").rmdir()
        return real_open(path, flags, mode, dir_fd=dir_fd)

    class Entry:
        def __init__(self, entry):
            self._entry, self.name = entry, entry.name

        def stat(self, *, follow_symlinks=True):
            if self.name == "also-gone.bin":
                raise FileNotFoundError(errno.ENOENT, "No such file or directory")
            return self._entry.stat(follow_symlinks=follow_symlinks)

    class Scan:
        def __init__(self, fd):
            self._iterator = real_scandir(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._iterator.close()

        def __iter__(self):
            return self

        def __next__(self):
            return Entry(next(self._iterator))

    monkeypatch.setattr(os, "open", vanishing_open)
    monkeypatch.setattr(os, "scandir", Scan)
    size = measure_folder(tmp_path)
    assert size.complete and size.problem is None
    assert size.entries == 2  # gone (listed, then vanished) and stays.bin


@pytest.mark.parametrize("error", [errno.EIO, errno.EMFILE, errno.ENAMETOOLONG, errno.EACCES, errno.ELOOP])
@pytest.mark.parametrize("where", ["subfolder", "socket", "image"])
def test_every_os_error_on_the_tree_is_a_verdict(output_root, expected, make_image, mask_array, monkeypatch,
                                                  error, where):
    _write_seg(output_root, make_image, mask_array)
    (output_root / "sub").mkdir()
    target = {"subfolder": "sub", "socket": OUTPUT_SOCKET.slug, "image": "seg.mha"}[where]
    real_open = os.open

    def failing_open(path, flags, mode=0o777, *, dir_fd=None):
        if path == target and not flags & os.O_PATH:
            raise OSError(error, os.strerror(error))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", failing_open)
    size = measure_folder(output_root)
    checked = check_output(output_root, expected)
    if where == "image" or error == errno.ELOOP:  # the size walk opens no file; ELOOP: a link, which counts nothing
        assert size.complete
    else:
        shown = {"subfolder": "/output/sub", "socket": f"/output/{OUTPUT_SOCKET.relative_path}"}[where]
        assert output_too_large(size, limit_bytes=10**9) == (
            f"/output holds a folder the runner cannot read: {shown} ({os.strerror(error)}); leave every file and "
            f"folder in /output readable and write only the one segmentation to /output/{OUTPUT_SOCKET.relative_path}/"
        )
    if where == "subfolder":
        assert checked.status is JobStatus.SUCCEEDED
    else:
        assert checked.status is JobStatus.INVALID_OUTPUT and checked.path is None
        assert checked.reason.isprintable()
        if error != errno.ELOOP:
            assert "the runner cannot read" in checked.reason and os.strerror(error) in checked.reason


def test_a_failing_read_is_invalid_and_leaves_no_copy(output_root, expected, make_image, mask_array, monkeypatch):
    _write_seg(output_root, make_image, mask_array)

    def failing_read(fd, count):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "read", failing_read)
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "the runner cannot read /output/images/sagittal-spine-mr-segmentation/seg.mha (Input/output error)" \
        in checked.reason
    assert not (output_root.parent / PREDICTION_FILE).exists()


def test_mode_000_parts_are_read_by_a_root_runner(output_root, expected, make_image, mask_array):
    if os.geteuid() != 0:
        pytest.skip("a runner without root: see the tests run as `nobody`")
    seg = _write_seg(output_root, make_image, mask_array)
    hidden = output_root / "hidden"
    hidden.mkdir()
    (hidden / "big.bin").write_bytes(b"x" * 5000)
    hidden.chmod(0)
    seg.chmod(0)
    size = measure_folder(output_root)
    assert size.complete and size.bytes >= 5000 + seg.stat().st_size  # counted, not skipped
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.SUCCEEDED, checked.reason
    remove_output(output_root)
    assert not output_root.exists()


# --- A runner without root (the check run in a child as `nobody`) --------------------------------


def _as_nobody(function, *args):
    """function(*args) in a forked child running as uid/gid 65534; its result (or exception) back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                result = ("ok", function(*args))
            except BaseException as error:  # the parent re-raises it
                result = ("raised", repr(error))
            with os.fdopen(write_end, "wb") as stream:
                pickle.dump(result, stream)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        data = stream.read()
    _, code = os.waitpid(pid, 0)
    assert code == 0 and data, "the child as nobody failed"
    kind, value = pickle.loads(data)
    assert kind == "ok", f"raised as nobody: {value}"
    return value


@pytest.fixture
def shared_tmp():
    """A folder `nobody` can reach (pytest's tmp_path lies below a folder only root may enter)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the check as another uid")
    folder = Path(tempfile.mkdtemp(prefix="spider-output-check-"))
    folder.chmod(0o755)
    yield folder
    remove_output(folder)


def _chown_tree(top: Path, uid: int) -> None:
    for folder, subfolders, files in os.walk(top):
        os.chown(folder, uid, uid)
        for name in subfolders + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def _job_folder(shared_tmp: Path, owner: int) -> Path:
    job = shared_tmp / "job"
    (job / "output" / OUTPUT_SOCKET.relative_path).mkdir(parents=True)
    _chown_tree(job, owner)
    return job


@pytest.mark.parametrize("owner", ["nobody", "root"])
def test_a_mode_000_folder_is_never_skipped_by_a_runner_without_root(shared_tmp, owner):
    job = _job_folder(shared_tmp, NOBODY)
    root = job / "output"
    hidden = root / "hidden"
    hidden.mkdir()
    (hidden / "big.bin").write_bytes(b"x" * 5000)
    _chown_tree(hidden, NOBODY if owner == "nobody" else 0)
    hidden.chmod(0)
    size = _as_nobody(measure_folder, root)
    if owner == "nobody":  # the runner's own folder: it makes it readable and counts what it holds
        assert size.complete and size.bytes >= 5000 and size.entries == 4
        assert stat.S_IMODE(hidden.stat().st_mode) & 0o500 == 0o500
    else:  # unreadable: the size is unknown, which counts as too large
        assert not size.complete
        reason = output_too_large(size, limit_bytes=10**9)
        assert reason == ("/output holds a folder the runner cannot read: /output/hidden (Permission denied); leave "
                          "every file and folder in /output readable and write only the one segmentation to "
                          "/output/images/sagittal-spine-mr-segmentation/")


@pytest.mark.parametrize("mode", [0o000, 0o444, 0o111])
def test_an_unreadable_socket_folder_not_the_runner_s_is_invalid_output(shared_tmp, expected, mode):
    job = _job_folder(shared_tmp, NOBODY)
    socket = job / "output" / OUTPUT_SOCKET.relative_path
    (socket / "seg.mha").write_bytes(b"x")
    _chown_tree(socket, 0)
    socket.chmod(mode)
    checked = _as_nobody(check_output, job / "output", expected)
    assert checked.status is JobStatus.INVALID_OUTPUT, checked.reason
    assert "the runner cannot read" in checked.reason and "Permission denied" in checked.reason
    size = _as_nobody(measure_folder, job / "output")
    reason = output_too_large(size, limit_bytes=10**9)
    assert reason is not None
    assert "/output holds a folder the runner cannot read: /output/images/sagittal-spine-mr-segmentation" in reason


@pytest.mark.parametrize("owner", ["nobody", "root"])
def test_a_mode_000_segmentation_for_a_runner_without_root(shared_tmp, expected, make_image, mask_array, owner):
    job = _job_folder(shared_tmp, NOBODY)
    seg = _write_seg(job / "output", make_image, mask_array)
    os.chown(seg, *(2 * (NOBODY if owner == "nobody" else 0,)))
    seg.chmod(0)
    checked = _as_nobody(check_output, job / "output", expected)
    if owner == "nobody":
        assert checked.status is JobStatus.SUCCEEDED, checked.reason
        copy = job / PREDICTION_FILE
        assert checked.path == copy and copy.stat().st_uid == NOBODY
        assert stat.S_IMODE(copy.stat().st_mode) == 0o444 and copy.read_bytes() == seg.read_bytes()
    else:
        assert checked.status is JobStatus.INVALID_OUTPUT
        assert checked.reason == ("the runner cannot read /output/images/sagittal-spine-mr-segmentation/seg.mha "
                                  "(Permission denied); write the segmentation as a regular file that its owner "
                                  "can read")
        assert not (job / PREDICTION_FILE).exists()


def test_remove_output_takes_a_runner_s_own_locked_tree(shared_tmp):
    job = _job_folder(shared_tmp, NOBODY)
    root = job / "output"
    _chain(root, ["d"] * 100, leaf=b"x")
    (root / "locked").mkdir()
    (root / "locked" / "f").write_bytes(b"x")
    outside = shared_tmp / "outside.txt"
    outside.write_text("keep")
    os.symlink(outside, root / "link")
    _chown_tree(root, NOBODY)
    (root / "locked").chmod(0)
    _as_nobody(remove_output, root)
    assert not root.exists() and outside.read_text() == "keep"
