"""Building an image offline from the local base image: its wheels and the build itself.

Both images the project builds from the offline base image (the reference algorithm container,
baselines.container.build, and the grand-challenge evaluation image, evaluation.platform.image)
install their third-party packages, pinned to this environment, from wheels that `pip download`
fetched on the host, and are built by the classic builder with no network and no pull.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

from evaluation.errors import EvaluationError

PYTHON_VERSION = "3.11"
"""The base image's Python; wheels are chosen for it."""
# manylinux tags the base image (Debian bookworm, glibc 2.36) can load, newest first.
MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_24", "manylinux_2_17", "manylinux2014")


class OfflineImageError(EvaluationError):
    """An image could not be built offline: a package not installed here or without a wheel, no base
    image, or a failed build."""


def pinned(distributions: Iterable[str], *, install_hint: str) -> tuple[str, ...]:
    """`name==version` of each distribution at the version installed here (what the tests ran with)."""
    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise OfflineImageError(f"expected {name} installed here, found none; {install_hint}") from None
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
            raise OfflineImageError(
                f"pip could not download wheels for {', '.join(missing)} (Python {PYTHON_VERSION}, "
                f"{platform.machine()}): {completed.stderr.strip()[-800:]}; put those wheels in a folder and "
                "pass it with --wheels")
    wheels = []
    for requirement in requirements:
        wheel = find_wheel(dest, requirement)
        if wheel is None:
            raise OfflineImageError(f"expected a wheel for {requirement} in {dest}, found none")
        wheels.append(wheel)
    return wheels


_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$")


def require_base_image(client, base_image: str) -> None:
    """OfflineImageError unless the local engine holds `base_image` (a build here cannot pull)."""
    import docker.errors

    try:
        client.images.get(base_image)
    except docker.errors.ImageNotFound:
        raise OfflineImageError(
            f"expected the base image {base_image!r} in the local Docker engine (builds here cannot pull), found "
            "none: build the offline one with `spider images base`, or pass --base-image") from None


def build_offline(client, context: Path, *, tag: str, buildargs: dict[str, str], log: Callable[[str], None],
                  labels: dict[str, str] | None = None) -> list[str]:
    """Build `context` with the classic builder, no network, no pull; returns the ids of its step images;
    OfflineImageError with the build's last lines."""
    lines: list[str] = []
    steps: list[str] = []
    try:
        stream = client.api.build(path=str(context), tag=tag, buildargs=buildargs, labels=labels or {}, rm=True,
                                  forcerm=True, pull=False, network_mode="none", decode=True)
        for chunk in stream:
            if "error" in chunk:
                detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                raise OfflineImageError(f"docker build of {tag} failed: {detail.strip()}\n{''.join(lines[-15:])}")
            text = chunk.get("stream")
            if text:
                lines.append(text)
                step = _STEP_IMAGE.match(text.rstrip("\n"))
                if step:
                    steps.append(step.group(1))
                if text.strip():
                    log(text.rstrip())
    except OfflineImageError:
        raise
    except Exception as error:  # docker.errors.APIError, requests errors
        raise OfflineImageError(f"docker build of {tag} failed: {error}") from error
    return steps
