"""`spider pack`: the files it writes, rendered with the phase's values; its refusals; the pack's
algorithm and invoke server run here; and both styles built offline by their own build.sh and run
through `spider try` (test.sh) with the production flags."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import contract, labels
from challenge.cli import main
from challenge.errors import ConfigError
from challenge.phases import Phase, get_phase
from evaluation.pack.starter import PackError, default_tag, render_pack, write_starter_pack

STYLE_FILES = [".dockerignore", "Dockerfile", "algorithm.py", "build.sh", "mha.py", "save.sh", "test.sh"]
PACK_FILES = sorted(["README.md"] + [f"exec/{name}" for name in [*STYLE_FILES, "run.py"]]
                    + [f"invoke/{name}" for name in [*STYLE_FILES, "server.py"]])
SCRIPTS = {"build.sh", "test.sh", "save.sh"}
TRY_TIMEOUT_S = 240
DOCS = Path(__file__).resolve().parents[2] / "docs" / "grand-challenge.md"
# A phase with values no real phase has, so that each one found in the pack came from the phase.
ODD_PHASE = Phase(
    name="odd-phase", description="An odd phase for the tests.", time_limit_seconds=77,
    memory_bytes=3 * 1024**3, cpus=1.5, gpus=1, pids_limit=99, tmp_bytes=300 * 1024**2,
    output_limit_bytes=40 * 1024**2, image_limit_bytes=2 * 1000**3, max_image_layers=42,
)


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


# --- what it writes ------------------------------------------------------------------------------

def test_pack_writes_both_styles_and_a_readme(pack):
    assert _files(pack) == PACK_FILES
    for path in pack.rglob("*"):
        if path.is_file():
            executable = os.access(path, os.X_OK)
            assert executable == (path.name in SCRIPTS), path
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text and "{%" not in text, path  # every template rendered
            if path.suffix == ".py":
                compile(text, str(path), "exec")
    for style in ("exec", "invoke"):
        for name in ("algorithm.py", "mha.py"):  # one per-case logic, copied into each build folder
            assert (pack / style / name).read_text() == (pack / "exec" / name).read_text()


def test_pack_is_rendered_with_the_phases_values():
    files = {item.path: item.text for item in render_pack(ODD_PHASE)}
    readme = files["README.md"]
    assert readme.startswith("# SPIDER starter pack for the phase 'odd-phase'\n")
    assert contract.describe() in readme
    assert ODD_PHASE.describe() in readme
    for row in ("| wall clock per case | 77 s |", "| memory (no swap) | 3g |", "| CPUs | 1.5 |", "| GPUs | 1 |",
                "| processes and threads | 99 |", "| `/tmp` (emptied after each case) | 300m |",
                "| everything written to `/output` | 40m |",
                "| image (`docker save` tarball, and its unpacked layers) | 2 GB, at most 42 layers |"):
        assert row in readme
    assert "| 201-225 | intervertebral discs, from the bottom: 201 = L5/S1 |" in readme
    for style in ("exec", "invoke"):
        tag = f"spider-starter-odd-phase-{style}:latest"
        assert default_tag(ODD_PHASE, style) == tag
        assert files[f"{style}/test.sh"].rstrip().endswith(
            'exec "${SPIDER:-spider}" try "$TAG" --data "$DATA" --out "$OUT" --phase odd-phase')
        assert "# 77 s per case, 3g memory, 1.5 CPUs, 1 GPU, 99 processes," in files[f"{style}/test.sh"]
        assert f'TAG="${{3:-{tag}}}"' in files[f"{style}/test.sh"]
        assert "docker build --network none --force-rm --tag \"$TAG\" ." in files[f"{style}/build.sh"]
        assert f'TAG="${{1:-{tag}}}"' in files[f"{style}/build.sh"]
        assert 'docker save "$TAG" | gzip -c > "$NAME.tar.gz"' in files[f"{style}/save.sh"]
        assert f'NAME="${{2:-spider-starter-odd-phase-{style}}}"' in files[f"{style}/save.sh"]
        dockerfile = files[f"{style}/Dockerfile"]
        assert "\nFROM python:3.11-slim\n" in dockerfile and "\nUSER 10001:10001\n" in dockerfile
    assert "LABEL org.grand-challenge.api-method=invoke\n" in files["invoke/Dockerfile"]
    assert "LABEL" not in files["exec/Dockerfile"]
    assert "GRAND_CHALLENGE_COMPONENT_USER_WEBSERVER_PORT=4743" in files["invoke/Dockerfile"]
    assert 'ENTRYPOINT ["python3", "/opt/algorithm/server.py"]' in files["invoke/Dockerfile"]
    assert 'ENTRYPOINT ["python3", "/opt/algorithm/run.py"]' in files["exec/Dockerfile"]
    assert "limit of 77 s as its timeout" in files["invoke/server.py"]
    algorithm = files["exec/algorithm.py"]
    for line in ('INPUT_SLUG = "sagittal-spine-mri"', 'OUTPUT_RELATIVE_PATH = "images/sagittal-spine-mr-segmentation"',
                 "VERTEBRA_L5 = 1", "SPINAL_CANAL = 100", "DISC_L5_S1 = 201"):
        assert line in algorithm


@pytest.mark.parametrize("name, time_limit, memory", [("final", 1200, "16g"), ("sanity-check", 600, "8g")])
def test_pack_of_each_declared_phase_names_its_limits(name, time_limit, memory):
    phase = get_phase(name)
    files = {item.path: item.text for item in render_pack(phase)}
    readme = files["README.md"]
    assert f"| wall clock per case | {time_limit} s |" in readme
    assert f"| memory (no swap) | {memory} |" in readme
    assert "| image (`docker save` tarball, and its unpacked layers) | 10 GB, at most 125 layers |" in readme
    assert f"--phase {name}\n" in files["exec/test.sh"]


# --- refusals ------------------------------------------------------------------------------------

def test_pack_refuses_a_folder_that_is_not_empty_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "exec").mkdir()
    with pytest.raises(PackError, match=r"expected a new or empty folder, found 2 entries in it \(exec, notes.txt\)"):
        write_starter_pack(phase=ODD_PHASE, out_dir=out)
    assert _files(out) == ["notes.txt"] and not any((out / "exec").iterdir())


def test_pack_refuses_a_file_and_takes_an_empty_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="expected a new or empty folder, found a file"):
        write_starter_pack(phase=ODD_PHASE, out_dir=tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert _files(write_starter_pack(phase=ODD_PHASE, out_dir=tmp_path / "empty").out_dir) == PACK_FILES


def test_unknown_phase_is_the_phase_lookups_error(tmp_path, capsys):
    with pytest.raises(ConfigError):
        get_phase("no-such-phase")
    assert main(["pack", "--phase", "no-such-phase", "--out", str(tmp_path / "out")]) == 2
    assert "spider pack: error: unknown phase 'no-such-phase'; phases declared: ['final', 'sanity-check']" in (
        capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_pack_and_refuses_to_write_it_twice(tmp_path, capsys):
    out = tmp_path / "pack"
    assert main(["pack", "--phase", "final", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"starter pack for phase final ({get_phase('final').describe()}) in {out}:\n")
    assert "  invoke/server.py\n" in printed
    assert _files(out) == PACK_FILES
    assert main(["pack", "--phase", "final", "--out", str(out)]) == 2
    assert "found 3 entries in it (README.md, exec, invoke)" in capsys.readouterr().err


def test_docs_show_the_command():
    assert "spider pack --phase NAME --out DIR\n" in DOCS.read_text(encoding="utf-8")


# --- the pack's code, run here --------------------------------------------------------------------

@pytest.mark.parametrize("dtype, compress", [(np.int16, True), (np.uint16, False), (np.float32, True),
                                             (np.uint8, False)])
def test_mha_reads_what_simpleitk_writes(pack, pack_modules, tmp_path, dtype, compress):
    mha = pack_modules(pack / "exec")["mha"]
    array = (np.arange(4 * 5 * 6).reshape(4, 5, 6) * 3 % 251).astype(dtype)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 3.3, 1.25))
    image.SetOrigin((-12.5, 40.0, 7.25))
    image.SetDirection((0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    path = tmp_path / "image.mha"
    sitk.WriteImage(image, str(path), compress)
    read = mha.read(path)
    assert np.array_equal(np.array(read.voxels, dtype=dtype), array.ravel())  # x fastest = C order of (z, y, x)
    out = tmp_path / "labels.mha"
    mha.write_labels(out, read.geometry, bytes(range(array.size)))
    written = sitk.ReadImage(str(out))
    assert written.GetSize() == image.GetSize() and written.GetDirection() == image.GetDirection()
    assert np.allclose(written.GetSpacing(), image.GetSpacing()) and np.allclose(written.GetOrigin(), image.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(written).ravel(), np.arange(array.size))


def test_mha_says_what_it_expected(pack, pack_modules, tmp_path):
    mha = pack_modules(pack / "exec")["mha"]
    path = tmp_path / "image.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), dtype=np.int16)), str(path), False)
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(mha.MhaError, match="expected 48 bytes of voxels, found 46"):
        mha.read(path)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4), dtype=np.int16)), str(path), False)
    with pytest.raises(mha.MhaError, match="expected NDims = 3, found '2'"):
        mha.read(path)


def _expected_labels(image_path: Path) -> np.ndarray:
    """The example's rule by hand: brighter than mean + 1 std of the image -> vertebra L5."""
    voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path))).astype(np.float64)
    return np.where(voxels > voxels.mean() + voxels.std(), labels.vertebra_value(1), 0).astype(np.uint8)


def _check_on_grid(output: Path, image_path: Path) -> np.ndarray:
    written, source = sitk.ReadImage(str(output)), sitk.ReadImage(str(image_path))
    assert written.GetPixelID() == sitk.sitkUInt8
    assert written.GetSize() == source.GetSize()
    assert np.allclose(written.GetSpacing(), source.GetSpacing(), rtol=0, atol=1e-6)
    assert np.allclose(written.GetOrigin(), source.GetOrigin(), rtol=0, atol=1e-4)
    assert np.allclose(written.GetDirection(), source.GetDirection(), rtol=0, atol=1e-6)
    return sitk.GetArrayFromImage(written)


@pytest.mark.parametrize("socket_key", [None, "socket", "interface"])
def test_algorithm_segments_a_case_on_its_grid(pack, pack_modules, pack_data, platform_input, tmp_path, socket_key):
    modules = pack_modules(pack / "exec")
    algorithm = modules["algorithm"]
    image_path = sorted((pack_data / "images").glob("*.mha"))[0]
    model = algorithm.load_model(tmp_path / "no-model")
    assert model == {"threshold_sigmas": 1.0, "label": 1}
    output = algorithm.run_case(model, input_root=platform_input(image_path, socket_key=socket_key),
                                output_root=tmp_path / "output")
    assert output == tmp_path / "output" / contract.OUTPUT_SOCKET.relative_path / "output.mha"
    array = _check_on_grid(output, image_path)
    expected = _expected_labels(image_path)
    assert 0 < np.count_nonzero(array) < array.size
    assert np.array_equal(array, expected)


def test_algorithm_reads_its_model_folder(pack, pack_modules, tmp_path):
    algorithm = pack_modules(pack / "exec")["algorithm"]
    (tmp_path / "model.json").write_text(json.dumps({"label": labels.SPINAL_CANAL}))
    assert algorithm.load_model(tmp_path) == {"threshold_sigmas": 1.0, "label": labels.SPINAL_CANAL}


def test_algorithm_says_what_input_it_expected(pack, pack_modules, pack_data, platform_input):
    algorithm = pack_modules(pack / "exec")["algorithm"]
    images = sorted((pack_data / "images").glob("*.mha"))
    root = platform_input(images[0])
    values = json.loads((root / "inputs.json").read_text())
    values[0]["socket"]["slug"] = values[0]["interface"]["slug"] = "another-socket"
    (root / "inputs.json").write_text(json.dumps(values))
    with pytest.raises(algorithm.CaseError, match=r"expected a value of the socket 'sagittal-spine-mri', "
                                                  r"found sockets \['another-socket'\]"):
        algorithm.find_input_image(root)
    root = platform_input(images[0])
    folder = root / contract.INPUT_SOCKET.relative_path
    for path in folder.iterdir():
        path.rename(folder / "renamed.mha")
    (folder / "second.mha").write_bytes((folder / "renamed.mha").read_bytes())
    with pytest.raises(algorithm.CaseError, match=r"expected one \.mha image in .*, found 2: \['renamed.mha', "
                                                  r"'second.mha'\]"):
        algorithm.find_input_image(root)


def _call(port: int, method: str, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.timeout(60)
def test_invoke_server_answers_health_then_invokes(pack, pack_modules, pack_data, platform_input, tmp_path, capsys):
    modules = pack_modules(pack / "invoke")
    algorithm, server_module = modules["algorithm"], modules["server"]
    image_path = sorted((pack_data / "images").glob("*.mha"))[-1]
    loading, loads = threading.Event(), []
    inputs = {"root": platform_input(image_path)}

    def load():
        loading.wait(20)
        loads.append(1)
        return algorithm.load_model(tmp_path / "no-model")

    def run(model):
        return algorithm.run_case(model, input_root=inputs["root"], output_root=tmp_path / "output")

    state = server_module.Server(load=load, run=run)
    httpd = server_module.serve(0, state)
    port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        assert _call(port, "GET", "/health") == (503, "loading the model\n")
        assert _call(port, "POST", "/invoke")[0] == 503
        loading.set()
        for _ in range(200):
            status, _body = _call(port, "GET", "/health")
            if status == 200:
                break
            threading.Event().wait(0.05)
        assert status == 200
        status, body = _call(port, "POST", "/invoke")
        output = tmp_path / "output" / contract.OUTPUT_SOCKET.relative_path / "output.mha"
        assert (status, body) == (201, f"wrote {output}\n")
        assert np.array_equal(_check_on_grid(output, image_path), _expected_labels(image_path))
        inputs["root"] = tmp_path / "missing"  # the next case breaks: 500, its message, the traceback on stderr
        capsys.readouterr()
        status, body = _call(port, "POST", "/invoke")
        assert status == 500 and body.startswith("FileNotFoundError: ") and "inputs.json" in body
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "FileNotFoundError" in err
        inputs["root"] = platform_input(image_path)  # and the server goes on with the next case
        assert _call(port, "POST", "/invoke")[0] == 201
        assert _call(port, "GET", "/elsewhere")[0] == 404
        assert loads == [1]  # the model was loaded once
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


# --- the real containers ------------------------------------------------------------------------

def _spider_env() -> dict:
    """The environment of the pack's scripts: this environment's `spider` (test.sh reads $SPIDER)."""
    return {**os.environ, "SPIDER": str(Path(sys.executable).with_name("spider"))}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(TRY_TIMEOUT_S + 200)
@pytest.mark.parametrize("style", ["exec", "invoke"])
def test_each_style_builds_offline_and_passes_spider_try(built_pack, docker_client, pack_data, tmp_path, style):
    folder, build = built_pack
    tag = build(style)
    config = docker_client.images.get(tag).attrs["Config"]
    assert (config.get("Labels") or {}).get("org.grand-challenge.api-method") == (
        "invoke" if style == "invoke" else None)
    out = tmp_path / "try-out"
    completed = subprocess.run([str(folder / style / "test.sh"), str(pack_data), str(out), tag], capture_output=True,
                               text=True, timeout=TRY_TIMEOUT_S, env=_spider_env())
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "2 of 2 cases succeeded under phase sanity-check: 600 s per case, 8g memory" in completed.stdout
    jobs = json.loads((out / "jobs.json").read_text())
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"]
    for job in jobs:
        prediction = out / "predictions" / f"{job['case']}.mha"
        image_path = pack_data / "images" / f"{job['case']}.mha"
        array = _check_on_grid(prediction, image_path)
        assert np.count_nonzero(array) > 0
        assert set(np.unique(array).tolist()) <= {0, *labels.LABEL_MAP}
        assert np.array_equal(array, _expected_labels(image_path))
    metrics = json.loads((out / "metrics.json").read_text())
    assert [metrics["case"][job["case"]]["status"] for job in jobs] == ["scored", "scored"]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(TRY_TIMEOUT_S + 200)
def test_save_writes_the_tarball_that_spider_try_runs(built_pack, pack_data, tmp_path):
    folder, build = built_pack
    tag = build("exec")
    name = tmp_path / "submission"
    completed = subprocess.run([str(folder / "exec" / "save.sh"), tag, str(name)], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    tarball = Path(f"{name}.tar.gz")
    with gzip.open(tarball) as stream:
        assert stream.read(2)  # gzip, not a plain tar
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
    assert [entry["RepoTags"] for entry in manifest] == [[tag]]
    out = tmp_path / "try-out"
    completed = subprocess.run([str(folder / "exec" / "test.sh"), str(pack_data), str(out), str(tarball)],
                               capture_output=True, text=True, timeout=TRY_TIMEOUT_S, env=_spider_env())
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert [job["status"] for job in json.loads((out / "jobs.json").read_text())] == ["succeeded", "succeeded"]
