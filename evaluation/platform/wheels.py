"""The evaluation image's third-party packages: pinned to this environment, as wheels fetched on the host."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterable

from evaluation.platform.errors import EvaluationImageError

PYTHON_VERSION = "3.11"
"""The base image's Python; wheels are chosen for it."""
DISTRIBUTIONS = ("numpy", "SimpleITK", "scipy", "edt", "fastremap", "tqdm")
"""What scoring imports (evaluation.platform.image checks this against the modules it copies)."""
# manylinux tags the base image (Debian bookworm, glibc 2.36) can load, newest first.
_MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_24", "manylinux_2_17", "manylinux2014")


def normalized(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): 'SimpleITK' -> 'simpleitk'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(distributions: Iterable[str] = DISTRIBUTIONS) -> tuple[str, ...]:
    """`name==version` of each distribution, at the version installed here (what the tests ran with)."""
    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise EvaluationImageError(f"expected {name} installed here, found none; install the project "
                                       "(pip install -e .)") from None
    return tuple(pins)


def check_covered(imported: Iterable[str], distributions: Iterable[str] = DISTRIBUTIONS) -> None:
    """EvaluationImageError naming every imported top-level module that no listed distribution provides."""
    provided = metadata.packages_distributions()
    wanted = {normalized(name) for name in distributions}
    missing = sorted(module for module in imported
                     if not {normalized(d) for d in provided.get(module, [module])} & wanted)
    if missing:
        raise EvaluationImageError(
            f"scoring imports {', '.join(missing)}, which the evaluation image does not install: expected every "
            f"third-party import among {list(distributions)}; add its distribution to "
            "evaluation.platform.wheels.DISTRIBUTIONS")


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
    `pip download` on the host (the image build itself has no network)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    missing = [requirement for requirement in requirements if find_wheel(dest, requirement) is None]
    if missing:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", PYTHON_VERSION,
                   "--dest", str(dest)]
        for tag in _MANYLINUX:
            command += ["--platform", f"{tag}_{platform.machine()}"]
        completed = subprocess.run(command + missing, capture_output=True, text=True)
        if completed.returncode != 0:
            raise EvaluationImageError(
                f"pip could not download wheels for {', '.join(missing)} (Python {PYTHON_VERSION}, "
                f"{platform.machine()}): {completed.stderr.strip()[-800:]}; put those wheels in a folder and "
                "pass it with --wheels")
    wheels = []
    for requirement in requirements:
        wheel = find_wheel(dest, requirement)
        if wheel is None:
            raise EvaluationImageError(f"expected a wheel for {requirement} in {dest}, found none")
        wheels.append(wheel)
    return wheels
