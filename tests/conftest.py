"""Shared fixtures: tiny hand-made SPIDER folders and a session-wide synthetic release."""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels

# An oblique, axis-permuted grid with uneven spacing: catches any code that assumes an
# identity direction or (x, y, z) == (z, y, x).
TINY_SPACING_XYZ = (3.3, 0.7, 0.6)
TINY_DIRECTION = (0.0, 0.0, 1.0,
                  1.0, 0.0, 0.0,
                  0.0, 1.0, 0.0)
TINY_ORIGIN = (-12.5, 40.0, 7.25)


def tiny_mask_array(shape_zyx=(24, 20, 6)) -> np.ndarray:
    """Along z (index order, bottom first): disc L5/S1, L5, disc L4/L5, L4; the canal behind them."""
    mask = np.zeros(shape_zyx, dtype=np.uint8)
    mask[2:5, 4:12, 1:5] = labels.disc_value(1)
    mask[5:11, 4:12, 1:5] = labels.vertebra_value(1)
    mask[11:13, 4:12, 1:5] = labels.disc_value(2)
    mask[13:19, 4:12, 1:5] = labels.vertebra_value(2)
    mask[:, 13:16, 2:4] = labels.SPINAL_CANAL
    return mask


def to_image(
    array: np.ndarray, *, spacing=TINY_SPACING_XYZ, direction=TINY_DIRECTION, origin=TINY_ORIGIN
) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    image.SetOrigin(origin)
    return image


def write_tiny_release(root: Path, *, names=("1_t1", "1_t2", "3_t2_SPACE")) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    mask = tiny_mask_array()
    rng = np.random.default_rng(0)
    for name in names:
        image = rng.normal(100, 10, mask.shape).astype(np.int16) + mask.astype(np.int16)
        sitk.WriteImage(to_image(image), str(root / "images" / f"{name}.mha"))
        sitk.WriteImage(to_image(mask), str(root / "masks" / f"{name}.mha"))
    with (root / "overview.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["new_file_name", "subset", "Manufacturer", "an_extra_column"])
        for index, name in enumerate(names):
            writer.writerow([name, "training" if index else "validation", "SIEMENS", "x"])
    with (root / "radiological_gradings.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Patient", "IVD label", "Modic", "Pfirrman grade"])
        writer.writerow([1, 1, 0, 3])
        writer.writerow([1, 2, 1, 4])
    return root


@pytest.fixture
def tiny_release(tmp_path: Path) -> Path:
    """A valid three-series release folder with hand-made 6 x 20 x 24 voxel masks."""
    return write_tiny_release(tmp_path / "release")


@pytest.fixture(scope="session")
def docker_client():
    """A client of the Docker engine that `make test` starts; under CI a missing engine fails."""
    from evaluation.runner.docker_runner import connect
    from evaluation.runner.errors import EngineUnavailableError

    try:
        return connect()
    except EngineUnavailableError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {error} (`make system` starts one as root)")


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The offline base image's id, also tagged `python:3.11-slim` when that tag is free.

    Reused when tagged already, else built once per machine (1-2 minutes of debootstrap).
    """
    import docker.errors

    from evaluation.runner import base_image as base

    try:
        image_id = docker_client.images.get(base.BASE_TAG).id
    except docker.errors.ImageNotFound:
        cannot_build = None
        if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
            cannot_build = "no base image and no debootstrap to build it (run `make system`)"
        elif os.geteuid() != 0:
            cannot_build = "no base image, and building it needs root: run `sudo spider images base` once"
        if cannot_build:
            if os.environ.get("CI"):
                pytest.fail(cannot_build)
            pytest.skip(cannot_build)
        image_id = base.build_base_image(docker_client, progress=print).image_id
    base.tag_image(docker_client, image_id, base.SLIM_TAG, keep_foreign=True)
    return image_id


# --- No process the suite starts may outlive it -------------------------------------------------
# The suite's processes are pytest's descendants plus every process that inherited SESSION_ENV
# (set below, before any test runs): that also finds orphans re-parented to init, such as the pool
# workers of a SIGKILLed engine or the daemons of a `ray start` in its own session. At the end of
# the session they get LEFTOVER_GRACE_S to exit; any still alive is listed and fails the run.
# pytest's own multiprocessing helpers (its resource_tracker and forkserver, direct children whose
# pipe from pytest reaches EOF when pytest exits, so they end with it) are named but not counted.

SESSION_ENV = "SPIDER_TEST_SESSION"
LEFTOVER_GRACE_S = 10.0
_HELPER_MAINS = ("from multiprocessing.resource_tracker import main", "from multiprocessing.forkserver import main")
_leftovers: dict = {"first_seen": {}, "alive": [], "helpers": []}


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, state, command line) of every live process (Linux /proc)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        table[int(entry)] = (int(ppid), state, command or stat[stat.index("(") : stat.rindex(")") + 1])
    return table


def _suite_processes() -> tuple[dict[int, tuple[int, str]], dict[int, tuple[int, str]]]:
    """(the suite's live processes, pytest's own multiprocessing helpers): pid -> (ppid, command)."""
    me, table = os.getpid(), _proc_table()
    marker = f"\0{SESSION_ENV}={os.environ.get(SESSION_ENV)}\0".encode()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), list(children.get(me, ()))
    while stack:
        pid = stack.pop()
        found.add(pid)
        stack.extend(children.get(pid, ()))
    for pid in table.keys() - found - {me}:
        try:
            if marker in b"\0" + Path(f"/proc/{pid}/environ").read_bytes():
                found.add(pid)
        except OSError:
            pass
    alive = {pid: (table[pid][0], table[pid][2]) for pid in found if table[pid][1] != "Z"}
    helpers = {pid: (ppid, command) for pid, (ppid, command) in alive.items()
               if ppid == me and command.split(" -c ")[-1].startswith(_HELPER_MAINS)}
    return {pid: row for pid, row in alive.items() if pid not in helpers}, helpers


def pytest_configure(config):
    os.environ[SESSION_ENV] = f"{os.getpid()}-{os.urandom(4).hex()}"  # inherited by all the suite starts


def pytest_runtest_logfinish(nodeid, location):
    """Note the test after which each still-running process was first seen (its likely origin)."""
    first_seen = _leftovers["first_seen"]
    for pid in _suite_processes()[0]:
        first_seen.setdefault(pid, nodeid)


def pytest_sessionfinish(session, exitstatus):
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    alive, helpers = _suite_processes()
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive, helpers = _suite_processes()
    _leftovers["alive"] = sorted(alive.items())
    _leftovers["helpers"] = sorted(helpers.items())
    if alive and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    first_seen = _leftovers["first_seen"]
    if _leftovers["alive"]:
        terminalreporter.section(f"processes started by the suite still running after {LEFTOVER_GRACE_S:g} s", red=True)
        for pid, (ppid, command) in _leftovers["alive"]:
            origin = f"after {first_seen[pid]}" if pid in first_seen else "at the end of the session"
            terminalreporter.line(f"pid {pid} (ppid {ppid}), first seen {origin}: {command[:400]}", red=True)
        terminalreporter.line("The run fails because of them: stop them where the test starts them.", red=True)
    if _leftovers["helpers"]:
        names = ", ".join(f"{pid} ({'resource_tracker' if 'resource_tracker' in command else 'forkserver'})"
                          for pid, (_, command) in _leftovers["helpers"])
        terminalreporter.line(f"pytest's own multiprocessing helpers, which exit with it: {names}")
