"""Build the reference container of a trained run, offline: wheels from the host, the model hashed.

The build context holds the Dockerfile of this folder, wheels/ (numpy, SimpleITK, onnxruntime at
the versions installed here, downloaded once with pip on the host and cached), app/ (the few
modules inference needs: challenge's label map, geometry and contract, and baselines' classes,
preprocessing, inference and the container program) and model/ (the ONNX export and its spec).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from baselines.errors import ContainerBuildError
from baselines.export import export_run
from evaluation.offline_image import build_offline, default_wheel_dir, pinned, prepare_wheels, require_base_image

DEFAULT_BASE_IMAGE = "python:3.11-slim"
CONTAINER_PACKAGES = ("numpy", "SimpleITK", "onnxruntime")
CONTAINER_FILE = "container.json"
MODEL_LABEL = "org.spider-harness.baseline.model-sha256"
# The modules copied into the image, relative to the project's source root.
APP_MODULES = (
    "challenge/__init__.py",
    "challenge/errors.py",
    "challenge/labels.py",
    "challenge/contract.py",
    "challenge/geometry.py",
    "challenge/images.py",
    "baselines/__init__.py",
    "baselines/errors.py",
    "baselines/classes.py",
    "baselines/preprocess.py",
    "baselines/infer.py",
    "baselines/levels.py",
    "baselines/container/__init__.py",
    "baselines/container/entrypoint.py",
)


@dataclass(frozen=True)
class ContainerImage:
    tag: str
    image_id: str
    size_bytes: int
    model_sha256: str
    base_image: str
    requirements: tuple[str, ...]
    build_seconds: float


def container_requirements() -> tuple[str, ...]:
    """The container's packages pinned to the versions installed here (what the tests ran with)."""
    return pinned(CONTAINER_PACKAGES, install_hint="install the training extra (pip install -e '.[train]')")


def source_root() -> Path:
    import baselines

    return Path(baselines.__file__).resolve().parent.parent


def write_context(run_dir: Path, context: Path, *, wheels: list[Path]) -> str:
    """Lay out the build context; returns the model's sha256."""
    exported = export_run(run_dir)
    shutil.copy2(Path(str(resources.files("baselines.container") / "Dockerfile")), context / "Dockerfile")
    (context / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, context / "wheels" / wheel.name)
    root = source_root()
    for module in APP_MODULES:
        target = context / "app" / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / module, target)
    (context / "model").mkdir()
    shutil.copy2(exported.model_path, context / "model" / exported.spec.model_file)
    exported.spec.write(context / "model")
    (context / ".dockerignore").write_text("**/__pycache__\n", encoding="utf-8")
    return exported.spec.model_sha256


def build_container(
    run_dir: Path | str,
    *,
    tag: str,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheels_dir: Path | None = None,
    client=None,
    log: Callable[[str], None] = lambda _message: None,
) -> ContainerImage:
    """Export the run's best checkpoint (if not done) and build the image `tag` from it."""
    run_dir = Path(run_dir)
    started = time.monotonic()
    requirements = container_requirements()
    wheels = prepare_wheels(Path(wheels_dir) if wheels_dir else default_wheel_dir(), requirements)
    client = client or _connect()
    require_base_image(client, base_image)
    with tempfile.TemporaryDirectory(prefix="spider-baseline-context-") as directory:
        context = Path(directory)
        model_sha256 = write_context(run_dir, context, wheels=wheels)
        log(f"building {tag} from {base_image} (offline; model sha256 {model_sha256[:12]}) ...")
        buildargs = {"BASE_IMAGE": base_image, "MODEL_SHA256": model_sha256}
        build_offline(client, context, tag=tag, buildargs=buildargs, log=log)
    image = client.images.get(tag)
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    if labels.get(MODEL_LABEL) != model_sha256:
        raise ContainerBuildError(f"{tag} does not carry the model hash {model_sha256} (label {MODEL_LABEL})")
    result = ContainerImage(
        tag=tag,
        image_id=image.id,
        size_bytes=int(image.attrs.get("Size") or 0),
        model_sha256=model_sha256,
        base_image=base_image,
        requirements=requirements,
        build_seconds=round(time.monotonic() - started, 1),
    )
    (run_dir / CONTAINER_FILE).write_text(json.dumps(asdict(result), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result


def _connect():
    try:
        import docker

        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except Exception as error:  # docker.errors.DockerException, requests errors
        raise ContainerBuildError(f"no Docker engine answers ({error}); start one (as root: `make engine`)") from error
