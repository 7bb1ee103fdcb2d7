"""Build the evaluation image offline: the scoring modules, wheels from the host, the settings, the ground truth.

The build context holds this folder's Dockerfile, wheels/ (evaluation.platform.wheels), app/ (every
project module the entry point imports, found by following its imports, and challenge's TOML
files), config.json (phase, profile, limits) and ground-truth/masks/ (only with --ground-truth).
The build has no network and pulls nothing: its base is the local `python:3.11-slim` that
`spider images base` builds. The image's last build step runs the entry point's self-check.

Measured (Docker 20.10, 2 CPUs): a build takes 31-55 s with the wheels cached (75 s when it
downloads them first), 4-10 s for a second image whose layers are cached; the image is 674 MB
(166 MB base, 508 MB of libraries, SimpleITK 264 MB of them) plus any baked masks
(docs/grand-challenge.md).
"""

from __future__ import annotations

import modulefinder
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Callable

from challenge.phases import Phase
from challenge.release import MASKS_DIR, SERIES_SUFFIX, case_name
from challenge.rules import RULES_VERSION
from evaluation.offline_image import build_offline, require_base_image
from evaluation.platform import wheels as wheel_files
from evaluation.platform.config import EvaluationConfig
from evaluation.platform.errors import EvaluationImageError
from evaluation.profiles import get_profile

DEFAULT_BASE_IMAGE = "python:3.11-slim"
ENTRY_MODULE = "evaluation.platform.entrypoint"
FIRST_PARTY = ("challenge", "evaluation")
"""The packages whose modules the image may hold (scoring imports nothing of the others)."""
PACKAGE_DATA = ("challenge/phases.toml", "challenge/ranking.toml")


@dataclass(frozen=True)
class EvaluationImage:
    """A built evaluation image and what went into it."""

    tag: str
    image_id: str
    size_bytes: int
    config: EvaluationConfig
    requirements: tuple[str, ...]
    modules: tuple[str, ...]
    base_image: str
    build_seconds: float
    step_images: tuple[str, ...] = ()
    """The images the build's steps made or reused (short ids), the install stage's included."""


def source_root() -> Path:
    return Path(__file__).resolve().parents[2]


def app_modules(root: Path | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the project files the entry point needs, relative to the source root; the third-party top-level
    modules they import), found by following every import statement from the entry point, those inside
    functions included (modulefinder reads the byte code)."""
    root = Path(root) if root is not None else source_root()
    entry = root / (ENTRY_MODULE.replace(".", "/") + ".py")
    finder = modulefinder.ModuleFinder(path=[str(root)])
    finder.run_script(str(entry))
    files = {entry.relative_to(root).as_posix()}
    for name, module in finder.modules.items():
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in FIRST_PARTY and path:
            files.add(Path(path).resolve().relative_to(root).as_posix())
    for name in list(files):  # every package above a module, for its __init__
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            files.add("/".join(parts[:depth]) + "/__init__.py")
    imported = {name.split(".")[0] for name in finder.badmodules}
    third_party = sorted(imported - set(sys.stdlib_module_names) - set(FIRST_PARTY) - {"__main__"})
    return tuple(sorted(files)), tuple(third_party)


def evaluation_config(phase: Phase, *, profile: str, case_values: bool | None = None,
                      ground_truth_cases: int = 0) -> EvaluationConfig:
    """The image's settings: the phase's scoring time limit, and per-case values in metrics.json only
    where the phase's public site may show them (unless `case_values` says otherwise)."""
    get_profile(profile)
    return EvaluationConfig(
        phase=phase.name,
        profile=profile,
        scoring_time_limit_s=phase.scoring_time_limit_seconds,
        case_values=phase.disclosure.case_values if case_values is None else case_values,
        rules_version=RULES_VERSION,
        ground_truth_cases=ground_truth_cases,
    )


def ground_truth_masks(folder: Path) -> list[Path]:
    """The reference masks of a SPIDER-layout folder (masks/<case>.mha); EvaluationImageError naming
    what was found otherwise."""
    folder = Path(folder)
    masks = folder / MASKS_DIR
    if not masks.is_dir():
        found = "no such folder" if not folder.exists() else f"no {MASKS_DIR}/ folder in it"
        raise EvaluationImageError(f"--ground-truth {folder}: expected a SPIDER-layout folder with "
                                   f"{MASKS_DIR}/<case>{SERIES_SUFFIX}, found {found}")
    found_masks = sorted(p for p in masks.iterdir() if case_name(p.name) is not None and p.is_file())
    if not found_masks:
        raise EvaluationImageError(f"--ground-truth {folder}: expected reference masks in {masks}, found no "
                                   f"*{SERIES_SUFFIX} file")
    return found_masks


def write_context(context: Path, *, config: EvaluationConfig, wheels: list[Path], modules: tuple[str, ...],
                  masks: list[Path]) -> None:
    """Lay out the build context (see the module doc); everything world-readable."""
    root = source_root()
    shutil.copyfile(Path(str(resources.files("evaluation.platform") / "Dockerfile")), context / "Dockerfile")
    (context / "wheels").mkdir()
    for wheel in wheels:
        shutil.copyfile(wheel, context / "wheels" / wheel.name)
    for module in (*modules, *PACKAGE_DATA):
        target = context / "app" / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / module, target)
    (context / "config.json").write_text(config.as_json(), encoding="utf-8")
    ground_truth = context / "ground-truth"
    ground_truth.mkdir()
    if masks:
        (ground_truth / MASKS_DIR).mkdir()
        for mask in masks:
            shutil.copyfile(mask, ground_truth / MASKS_DIR / mask.name)
    (context / ".dockerignore").write_text("**/__pycache__\n", encoding="utf-8")
    for path in [context, *context.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def build_evaluation_image(
    *,
    tag: str,
    phase: Phase,
    profile: str,
    ground_truth: Path | None = None,
    case_values: bool | None = None,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheels_dir: Path | None = None,
    client=None,
    log: Callable[[str], None] = lambda _message: None,
) -> EvaluationImage:
    """Build the evaluation image `tag` (offline) for `phase` and `profile`; see the module doc."""
    started = time.monotonic()
    config = evaluation_config(phase, profile=profile, case_values=case_values)
    masks = ground_truth_masks(ground_truth) if ground_truth is not None else []
    config = replace(config, ground_truth_cases=len(masks))
    modules, third_party = app_modules()
    wheel_files.check_covered(third_party)
    requirements = wheel_files.requirements()
    wheels = wheel_files.prepare_wheels(Path(wheels_dir) if wheels_dir else wheel_files.default_wheel_dir(),
                                        requirements)
    client = client or _connect()
    require_base_image(client, base_image)
    with tempfile.TemporaryDirectory(prefix="spider-evaluation-context-") as directory:
        context = Path(directory)
        write_context(context, config=config, wheels=wheels, modules=modules, masks=masks)
        log(f"building {tag} from {base_image} (offline; profile {profile}, phase {phase.name}, "
            f"{len(masks)} baked ground-truth cases, {len(modules)} modules) ...")
        steps = build_offline(client, context, tag=tag, buildargs={"BASE_IMAGE": base_image}, labels=config.labels(),
                              log=log)
    image = client.images.get(tag)
    return EvaluationImage(
        tag=tag,
        image_id=image.id,
        size_bytes=int(image.attrs.get("Size") or 0),
        config=config,
        requirements=requirements,
        modules=modules,
        base_image=base_image,
        build_seconds=round(time.monotonic() - started, 1),
        step_images=tuple(steps),
    )


def remove_image(client, image: EvaluationImage) -> None:
    """Remove the image, then the untagged step images of its build (the install stage stays behind
    otherwise). A step image with a tag (the base image) or still used by another image or a container
    is kept: the engine refuses to remove those without force, which is never used for them."""
    import docker.errors

    try:
        client.images.remove(image.image_id, force=True)
    except docker.errors.ImageNotFound:
        pass
    for step in reversed(image.step_images):
        try:
            if client.images.get(step).tags:
                continue
            client.images.remove(step)
        except docker.errors.APIError:  # gone already, or still used
            continue


def _connect():
    from evaluation.runner.docker_runner import connect

    return connect()


