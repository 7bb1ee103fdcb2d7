"""Wheels for an image built offline: third-party packages pinned to this environment, fetched on the host.

Both images the project builds from the offline base image (the reference algorithm container,
baselines.container.build, and the grand-challenge evaluation image, evaluation.platform.image)
install their packages from wheels that `pip download` fetched on the host: the build has no network.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterable

from evaluation.errors import EvaluationError

PYTHON_VERSION = "3.11"
"""The base image's Python; wheels are chosen for it."""
# manylinux tags the base image (Debian bookworm, glibc 2.36) can load, newest first.
MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_24", "manylinux_2_17", "manylinux2014")


class WheelError(EvaluationError):
    """A package to install in an offline image is not installed here or has no wheel."""


def pinned(distributions: Iterable[str], *, install_hint: str) -> tuple[str, ...]:
    """`name==version` of each distribution at the version installed here (what the tests ran with)."""
    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise WheelError(f"expected {name} installed here, found none; {install_hint}") from None
    return tuple(pins)


def default_wheel_dir() -> Path:
    """$SPIDER_CACHE_DIR/wheels/..., else ~/.cache/spider/wheels/... (per Python and machine)."""
    root = os.environ.get("SPIDER_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spider"
    return base / "wheels" / f"cp{PYTHON_VERSION.replace('.', '')}-{platform.machine()}"


def find_wheel(folder: Path, requirement: str) -> Path | None:
    name, version = requirement.split("==")
    prefix = f"{name.lower().replace('-', '_')}-{version}-"
    matches = sorted(p for p in Path(folder).glob("*.whl") if p.name.lower().startswith(prefix))
    return matches[0] if matches else None


def prepare_wheels(dest: Path, requirements: tuple[str, ...]) -> list[Path]:
    """One wheel per requirement for the base image's Python, from `dest` or downloaded into it with
    `pip download` on the host."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    missing = [requirement for requirement in requirements if find_wheel(dest, requirement) is None]
    if missing:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", PYTHON_VERSION,
                   "--dest", str(dest)]
        for tag in MANYLINUX:
            command += ["--platform", f"{tag}_{platform.machine()}"]
        completed = subprocess.run(command + missing, capture_output=True, text=True)
        if completed.returncode != 0:
            raise WheelError(
                f"pip could not download wheels for {', '.join(missing)} (Python {PYTHON_VERSION}, "
                f"{platform.machine()}): {completed.stderr.strip()[-800:]}; put those wheels in a folder and "
                "pass it with --wheels")
    wheels = []
    for requirement in requirements:
        wheel = find_wheel(dest, requirement)
        if wheel is None:
            raise WheelError(f"expected a wheel for {requirement} in {dest}, found none")
        wheels.append(wheel)
    return wheels
