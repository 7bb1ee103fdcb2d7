"""Fixtures of the starter-pack tests: a rendered pack, small synthetic cases, a case laid out as
the platform's /input, the pack's own modules imported from its folder, and its images built once."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from challenge import contract
from challenge.phases import get_phase
from challenge.synth.release import write_release
from evaluation.pack.starter import write_starter_pack

PACK_PHASE = "sanity-check"
PACK_MODULES = ("algorithm", "mha", "server")
"""The pack's module names (plain names: inside the image they sit next to the entry point)."""
BUILD_TIMEOUT_S = 180


@pytest.fixture
def pack(tmp_path) -> Path:
    """The starter pack of phase sanity-check, written into a new folder."""
    return write_starter_pack(phase=get_phase(PACK_PHASE), out_dir=tmp_path / "pack").out_dir


@pytest.fixture(scope="session")
def pack_data(tmp_path_factory) -> Path:
    """Two small synthetic series (T1 and T2, voxel scale 2.5: about 200,000 voxels each) with masks."""
    root = tmp_path_factory.mktemp("pack-data") / "data"
    write_release(root, cases=2, seed=3, voxel_scale=2.5, sequences=("t1", "t2"))
    return root


@pytest.fixture
def platform_input(tmp_path):
    """platform_input(image, socket_key="socket") -> an /input folder as the platform lays out one case:
    inputs.json (the socket under `socket` and `interface`, or only under `socket_key`) and the image
    renamed to its pk."""

    def make(image: Path, *, socket_key: str | None = None) -> Path:
        root = tmp_path / f"input-{uuid.uuid4().hex[:8]}"
        pk = str(uuid.uuid4())
        values = contract.inputs_json(pk, image_name=image.name)
        if socket_key is not None:
            for value in values:
                socket = value.pop("socket")
                value.pop("interface")
                value[socket_key] = socket
        folder = root / contract.INPUT_SOCKET.relative_path
        folder.mkdir(parents=True)
        shutil.copyfile(image, folder / f"{pk}{contract.IMAGE_SUFFIX}")
        (root / "inputs.json").write_text(json.dumps(values), encoding="utf-8")
        return root

    return make


@pytest.fixture
def pack_modules(monkeypatch):
    """pack_modules(folder) -> {name: module} of the pack's modules in `folder`, imported from there;
    forgotten again after the test (each style's folder has its own copies)."""

    def load(folder: Path) -> dict:
        for name in PACK_MODULES:
            monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.syspath_prepend(str(folder))
        return {name: importlib.import_module(name) for name in PACK_MODULES if (folder / f"{name}.py").is_file()}

    yield load
    for name in PACK_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def built_pack(tmp_path_factory, docker_client, base_image):
    """(pack folder, build(style) -> tag): the pack's images built by its own build.sh, each once, with
    tags of this session; removed at the end."""
    folder = write_starter_pack(phase=get_phase(PACK_PHASE), out_dir=tmp_path_factory.mktemp("built") / "pack").out_dir
    session = uuid.uuid4().hex[:8]
    built: dict[str, str] = {}

    def build(style: str) -> str:
        if style not in built:
            tag = f"spider-test/pack-{style}:{session}"
            completed = subprocess.run([str(folder / style / "build.sh"), tag], capture_output=True, text=True,
                                       timeout=BUILD_TIMEOUT_S)
            assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
            built[style] = tag
        return built[style]

    yield folder, build
    import docker.errors

    for tag in built.values():
        try:
            docker_client.images.remove(tag)
        except docker.errors.ImageNotFound:
            pass
