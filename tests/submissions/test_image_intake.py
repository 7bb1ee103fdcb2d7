"""A submitted `docker save` tarball is hostile: docker_pinner checks it before the engine loads
anything, never applies a tag from it, and leaves nothing behind when it refuses it.

The tarballs are tiny `FROM scratch` images built (offline) once for this module, saved with
`docker save` and removed again; the hostile variants rewrite that real output with tarfile.
"""

from __future__ import annotations

import builtins
import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from submissions.errors import IntakeError
from submissions.images import ImageLimits, docker_pinner, ensure_loaded

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

VICTIM_TAG = "spider-test/intake-victim:latest"
SLIM_TAG = "python:3.11-slim"


@dataclass(frozen=True)
class Tarballs:
    two_layers: Path  # a real `docker save` of a two-layer image, tagged spider-test/intake-two:latest
    two_layers_id: str
    one_layer: Path  # a real `docker save` of a one-layer image holding 64 KiB of zeros
    one_layer_id: str

    @property
    def ids(self) -> set[str]:
        return {self.two_layers_id, self.one_layer_id}


def _build(client, folder: Path, tag: str, files: dict[str, bytes], dockerfile: str) -> str:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "Dockerfile").write_text(dockerfile)
    image, _logs = client.images.build(path=str(folder), tag=tag, rm=True, forcerm=True, network_mode="none")
    return image.id


@pytest.fixture(scope="module")
def tarballs(docker_client, tmp_path_factory) -> Tarballs:
    root = tmp_path_factory.mktemp("intake-images")
    token = os.urandom(8).hex().encode()  # a fresh image id on every run
    built = {
        "spider-test/intake-two:latest": _build(
            docker_client, root / "two", "spider-test/intake-two:latest",
            {"a": b"a " + token, "b": b"b " + token}, 'FROM scratch\nCOPY a /a\nCOPY b /b\nCMD ["/a"]\n',
        ),
        "spider-test/intake-one:latest": _build(
            docker_client, root / "one", "spider-test/intake-one:latest",
            {"zeros": bytes(64 * 1024), "t": token}, 'FROM scratch\nCOPY zeros t /\nCMD ["/t"]\n',
        ),
    }
    paths = {}
    try:
        for tag in built:
            path = root / (tag.split("/")[1].split(":")[0] + ".tar")
            with path.open("wb") as stream:
                for chunk in docker_client.images.get(tag).save(named=True):
                    stream.write(chunk)
            paths[tag] = path
    finally:
        for tag in built:
            docker_client.images.remove(tag)  # the engine starts each test without these images
    return Tarballs(
        paths["spider-test/intake-two:latest"], built["spider-test/intake-two:latest"],
        paths["spider-test/intake-one:latest"], built["spider-test/intake-one:latest"],
    )


def _image_ids(client) -> set[str]:
    return set(client.api.images(all=True, quiet=True))  # images.list() would also get each image, racing removals


def _assert_nothing_loaded(client, before: set[str], tarballs: Tarballs) -> None:
    """No image of the module's tarballs is in the engine, and none appeared since `before`.

    Image ids are digests of the image config, so any image a load of these tarballs added has one of
    their ids; other images that came or went meanwhile belong to other users of the shared engine.
    """
    after = _image_ids(client)
    assert not (after - before) & tarballs.ids
    assert not after & tarballs.ids


def _tag_ids(client, *tags: str) -> dict[str, str | None]:
    import docker.errors

    found: dict[str, str | None] = {}
    for tag in tags:
        try:
            found[tag] = client.images.get(tag).id
        except docker.errors.ImageNotFound:
            found[tag] = None
    return found


@pytest.fixture
def engine(docker_client, tarballs):
    """The docker client; whatever image of `tarballs` a test loads or tags is removed after it."""
    import docker.errors

    yield docker_client
    try:
        docker_client.images.remove(VICTIM_TAG)  # only the tag: the image it points to stays
    except docker.errors.ImageNotFound:
        pass
    for image_id in tarballs.ids:
        try:
            docker_client.images.remove(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass


def _members(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return {member.name.rstrip("/"): (member, _data(tar, member)) for member in tar.getmembers()}


def _data(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member) if member.isreg() else None
    return stream.read() if stream is not None else b""


def _write(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _manifest(members) -> list[dict]:
    return json.loads(members["manifest.json"][1])


def _rewritten(source: Path, target: Path, *, manifest=None, extra=(), change=None) -> Path:
    """`source` with its manifest.json replaced, members changed (name -> (info, data) or None) and added."""
    members = _members(source)
    for name, value in (change or {}).items():
        if value is None:
            members.pop(name)
        else:
            members[name] = value
    if manifest is not None:
        members["manifest.json"] = _file("manifest.json", json.dumps(manifest).encode())
    return _write(target, [*members.values(), *extra])


def _oci_layout(source: Path, target: Path, *, gzip_layers: bool = False) -> Path:
    """`source` in the layout of Docker 25+: blobs/sha256/<hex>, manifest.json pointing into them, index.json."""
    members = _members(source)
    [entry] = _manifest(members)
    config = members[entry["Config"]][1]
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return f"blobs/sha256/{digest}"

    config_path = blob(config)
    layer_paths = []
    for name in entry["Layers"]:
        member, data = members[name]
        if member.issym():
            data = members[os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))][1]
        layer_paths.append(blob(gzip.compress(data, mtime=0) if gzip_layers else data))
    oci_manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + config_path[13:],
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + path[13:],
                    "size": len(blobs[path[13:]])} for path in layer_paths],
    }).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + oci_manifest[13:],
        "size": len(blobs[oci_manifest[13:]]),
        "annotations": {"io.containerd.image.name": f"docker.io/library/{SLIM_TAG}",
                        "org.opencontainers.image.ref.name": "3.11-slim"},
    }]}
    return _write(target, [
        *(_file(f"blobs/sha256/{digest}", data) for digest, data in blobs.items()),
        _file("index.json", json.dumps(index).encode()),
        _file("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        _file("manifest.json", json.dumps([{"Config": config_path, "RepoTags": [SLIM_TAG], "Layers": layer_paths}])
              .encode()),
    ])


def _leftovers(work_dir: Path) -> list[str]:
    folder = work_dir / "images"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def _archive_image_id(archive: Path) -> str:
    members = _members(archive)
    [entry] = _manifest(members)
    assert entry.get("RepoTags") is None
    names = {name for name, (member, _) in members.items() if member.isreg()}
    assert names == {"manifest.json", entry["Config"], *entry["Layers"]}  # nothing else: no repositories, no index
    return "sha256:" + hashlib.sha256(members[entry["Config"]][1]).hexdigest()


# --- tags ------------------------------------------------------------------------------------------------


def test_no_tag_in_a_tarball_is_ever_applied(engine, base_image, tarballs, tmp_path, work_dir):
    engine.images.get(base_image).tag(VICTIM_TAG)
    before = _tag_ids(engine, SLIM_TAG, VICTIM_TAG)
    assert before[SLIM_TAG] is not None and before[VICTIM_TAG] == base_image
    members = _members(tarballs.two_layers)
    [entry] = _manifest(members)
    last_layer = entry["Layers"][-1].split("/")[0]
    repositories = json.dumps({"python": {"3.11-slim": last_layer},
                               "spider-test/intake-victim": {"latest": last_layer}})
    index = json.dumps({"schemaVersion": 2, "manifests": [{"annotations": {
        "io.containerd.image.name": f"docker.io/library/{SLIM_TAG}",
        "org.opencontainers.image.ref.name": VICTIM_TAG,
    }}]})
    hostile = _rewritten(
        tarballs.two_layers, tmp_path / "hostile.tar",
        manifest=[{**entry, "RepoTags": [SLIM_TAG, VICTIM_TAG]}],
        change={"repositories": _file("repositories", repositories.encode())},
        extra=[_file("index.json", index.encode()), _file("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')],
    )

    try:
        pinned = docker_pinner(str(hostile), work_dir)
        after = _tag_ids(engine, SLIM_TAG, VICTIM_TAG)
    finally:
        if _tag_ids(engine, SLIM_TAG)[SLIM_TAG] != before[SLIM_TAG]:  # put the organizer's base tag back
            engine.images.get(before[SLIM_TAG]).tag(SLIM_TAG)

    assert pinned.digest == tarballs.two_layers_id
    assert after == before
    assert engine.images.get(pinned.digest).tags == []
    assert _archive_image_id(pinned.archive_path) == pinned.digest
    assert _leftovers(work_dir) == [pinned.archive_path.name]


# --- refusals that leave nothing loaded and nothing in the work folder ---------------------------------


def test_a_tarball_of_two_images_is_refused_and_nothing_stays_loaded(engine, tarballs, tmp_path, work_dir):
    one, two = _members(tarballs.one_layer), _members(tarballs.two_layers)
    both = {**one, **two}
    both["manifest.json"] = _file("manifest.json", json.dumps(_manifest(one) + _manifest(two)).encode())
    both.pop("repositories")
    path = _write(tmp_path / "both.tar", list(both.values()))
    before = _image_ids(engine)

    with pytest.raises(IntakeError, match=r"both\.tar: expected a tarball of exactly one image, found 2 images"):
        docker_pinner(str(path), work_dir)

    _assert_nothing_loaded(engine, before, tarballs)
    assert _leftovers(work_dir) == []


def _gzip_layers(tarballs: Tarballs, tmp_path: Path) -> Path:
    return _oci_layout(tarballs.one_layer, tmp_path / "gzip-layers.tar", gzip_layers=True)


@pytest.mark.parametrize(
    ("limits", "make", "message"),
    [
        (ImageLimits(tarball_bytes=1000), None,
         r"expected a tarball of at most 1,000 bytes \(1\.0 kB\), found [\d,]+ bytes \([\d.]+ kB\)"),
        (ImageLimits(layers=1), None, r"expected an image of at most 1 layers, found 2 layers"),
        (ImageLimits(unpacked_bytes=5000), None,
         r"expected an image that unpacks to at most 5,000 bytes \(5\.0 kB\), found tar members of [\d,]+ bytes"),
        (ImageLimits(unpacked_bytes=5000), "gzip",
         r"expected an image that unpacks to at most 5,000 bytes \(5\.0 kB\), "
         r"found a gzip tarball that unpacks to more"),
        (ImageLimits(unpacked_bytes=20_000), "gzip-layers",
         r"expected an image whose layers unpack to at most 20,000 bytes \(20\.0 kB\), found more"),
    ],
    ids=["tarball-bytes", "layers", "unpacked-bytes", "unpacked-gzip-tarball", "unpacked-gzip-layers"],
)
def test_limits_are_enforced_before_anything_is_loaded(engine, tarballs, tmp_path, work_dir, limits, make, message):
    if make == "gzip":
        path = tmp_path / "image.tar.gz"
        path.write_bytes(gzip.compress(tarballs.one_layer.read_bytes()))
    elif make == "gzip-layers":
        path = _gzip_layers(tarballs, tmp_path)
        assert path.stat().st_size < 20_000 < 64 * 1024  # only the layers' content is over the limit
    else:
        path = tarballs.two_layers if limits.layers == 1 else tarballs.one_layer
    before = _image_ids(engine)

    with pytest.raises(IntakeError, match=message) as refused:
        docker_pinner(str(path), work_dir, limits)

    assert str(path) in str(refused.value)
    _assert_nothing_loaded(engine, before, tarballs)
    assert _leftovers(work_dir) == []


def _hostile(kind: str, tarballs: Tarballs, tmp_path: Path) -> Path:
    members = _members(tarballs.two_layers)
    [entry] = _manifest(members)
    target = tmp_path / f"{kind}.tar"
    if kind == "dotdot":
        return _rewritten(tarballs.two_layers, target, extra=[_file("../evil", b"evil")])
    if kind == "absolute":
        return _rewritten(tarballs.two_layers, target, extra=[_file("/etc/evil", b"evil")])
    if kind in ("symlink-layer", "symlink-manifest"):
        name = entry["Layers"][0] if kind == "symlink-layer" else "manifest.json"
        link = tarfile.TarInfo(name)
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd" if kind == "symlink-layer" else entry["Config"]
        return _rewritten(tarballs.two_layers, target, change={name: (link, b"")})
    if kind == "hardlink":
        link = tarfile.TarInfo("hard")
        link.type, link.linkname = tarfile.LNKTYPE, "manifest.json"
        return _rewritten(tarballs.two_layers, target, extra=[(link, b"")])
    if kind == "device":
        device = tarfile.TarInfo("null")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
        return _rewritten(tarballs.two_layers, target, extra=[(device, b"")])
    if kind == "foreign-layer":  # a layer that is not the one the config names
        other = _members(tarballs.one_layer)
        [other_entry] = _manifest(other)
        _, data = other[other_entry["Layers"][0]]
        return _rewritten(tarballs.two_layers, target, change={entry["Layers"][0]: _file(entry["Layers"][0], data)})
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dotdot", r"expected relative member names inside the tarball, found '\.\./evil'"),
        ("absolute", r"expected relative member names inside the tarball, found '/etc/evil'"),
        ("symlink-layer", r"expected links to point to members of the tarball, found .* -> '/etc/passwd'"),
        ("symlink-manifest", r"expected manifest\.json 'manifest\.json' to be a regular file, found a link"),
        ("hardlink", r"found a hard link: 'hard'"),
        ("device", r"found a device or FIFO: 'null'"),
        ("foreign-layer", r"to have the config's diff id sha256:[0-9a-f]{64}, found sha256:[0-9a-f]{64}"),
    ],
)
def test_hostile_members_are_refused(engine, tarballs, tmp_path, work_dir, kind, message):
    path = _hostile(kind, tarballs, tmp_path)
    before = _image_ids(engine)

    with pytest.raises(IntakeError, match=message) as refused:
        docker_pinner(str(path), work_dir)

    assert str(path) in str(refused.value)
    _assert_nothing_loaded(engine, before, tarballs)
    assert _leftovers(work_dir) == []


def test_a_fifo_is_refused_without_blocking(engine, tmp_path, work_dir):
    fifo = tmp_path / "image.tar"
    os.mkfifo(fifo)
    with pytest.raises(IntakeError, match=r"image\.tar: expected a regular file .*, found a FIFO"):
        docker_pinner(str(fifo), work_dir)


@pytest.mark.parametrize("present_before", [False, True], ids=["new-image", "image-present-before"])
def test_a_failure_after_the_load_removes_only_what_the_load_added(
    engine, tarballs, work_dir, monkeypatch, present_before
):
    if present_before:
        with tarballs.two_layers.open("rb") as stream:
            engine.images.load(stream)

    def failing_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(IntakeError, match=r"two\.tar: the image could not be taken in .*No space left on device"):
        docker_pinner(str(tarballs.two_layers), work_dir)
    monkeypatch.undo()

    assert (tarballs.two_layers_id in _image_ids(engine)) is present_before
    assert _leftovers(work_dir) == []


# --- the archive is the image that was checked and loaded ---------------------------------------------


def test_the_source_is_read_once_and_a_file_swapped_in_later_is_not_archived(
    engine, tarballs, tmp_path, work_dir, monkeypatch
):
    from docker.models.images import ImageCollection

    source = tmp_path / "submitted.tar"
    source.write_bytes(tarballs.two_layers.read_bytes())
    opens: list[str] = []
    real_os_open, real_open, real_load = os.open, builtins.open, ImageCollection.load

    def counting_os_open(path, *args, **kwargs):
        if os.fspath(path) == str(source):
            opens.append("os.open")
        return real_os_open(path, *args, **kwargs)

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and os.fspath(file) == str(source):
            opens.append("open")
        return real_open(file, *args, **kwargs)

    def swapping_load(self, data):
        opens.append("swap")
        with real_open(source, "wb") as stream:  # the attacker swaps the file while it loads
            stream.write(tarballs.one_layer.read_bytes())
        return real_load(self, data)

    monkeypatch.setattr(os, "open", counting_os_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    monkeypatch.setattr(ImageCollection, "load", swapping_load)

    pinned = docker_pinner(str(source), work_dir)

    monkeypatch.undo()
    assert len(opens) == 2 and opens[-1] == "swap"  # one open of the submitted file, before it was loaded
    assert pinned.digest == tarballs.two_layers_id
    assert _archive_image_id(pinned.archive_path) == pinned.digest
    assert tarballs.one_layer_id not in _image_ids(engine)
    engine.images.remove(pinned.digest)
    with pinned.archive_path.open("rb") as stream:
        assert [image.id for image in engine.images.load(stream)] == [pinned.digest]


@pytest.mark.parametrize("layout", ["docker-save", "oci-blobs", "oci-blobs-gzip-layers", "gzip-tarball"])
def test_a_good_tarball_pins_and_loads_again_on_another_node(engine, tarballs, tmp_path, work_dir, layout):
    if layout == "docker-save":
        path = tarballs.two_layers
    elif layout == "gzip-tarball":
        path = tmp_path / "image.tar.gz"
        path.write_bytes(gzip.compress(tarballs.two_layers.read_bytes()))
    else:
        path = _oci_layout(tarballs.two_layers, tmp_path / "oci.tar", gzip_layers=layout.endswith("gzip-layers"))
    before = _tag_ids(engine, SLIM_TAG)

    pinned = docker_pinner(str(path), work_dir, ImageLimits(layers=2))

    assert pinned.digest == tarballs.two_layers_id
    assert _archive_image_id(pinned.archive_path) == pinned.digest
    assert _leftovers(work_dir) == [pinned.archive_path.name]
    assert engine.images.get(pinned.digest).tags == []
    assert _tag_ids(engine, SLIM_TAG) == before
    assert docker_pinner(str(path), work_dir) == pinned  # a second intake of the same image: the same pin

    engine.images.remove(pinned.digest)
    ensure_loaded(pinned.digest, pinned.archive_path, client=engine)
    assert engine.images.get(pinned.digest).tags == []


def test_a_docker_save_with_a_repeated_layer_pins(engine, tmp_path, work_dir):
    """`docker save` writes a layer that appears twice once and links the second to it."""
    token = os.urandom(8).hex().encode()
    image_id = _build(engine, tmp_path / "repeated", "spider-test/intake-repeated:latest", {"a": token, "b": b"b"},
                      "FROM scratch\nCOPY a /a\nCOPY b /b\nCOPY a /a\n")
    path = tmp_path / "repeated.tar"
    try:
        with path.open("wb") as stream:
            for chunk in engine.images.get(image_id).save(named=True):
                stream.write(chunk)
    finally:
        engine.images.remove("spider-test/intake-repeated:latest")
    assert any(member.issym() for member, _ in _members(path).values())
    try:
        pinned = docker_pinner(str(path), work_dir)
        assert pinned.digest == image_id
        assert len(_manifest(_members(pinned.archive_path))[0]["Layers"]) == 3
    finally:
        engine.images.remove(image_id)


def test_ensure_loaded_applies_no_tag_and_refuses_another_image(engine, tarballs, work_dir):
    # An archive made before intake rewrote tarballs: the submitted file itself, with its tag.
    ensure_loaded(tarballs.two_layers_id, tarballs.two_layers, client=engine)
    assert engine.images.get(tarballs.two_layers_id).tags == []
    assert _tag_ids(engine, "spider-test/intake-two:latest") == {"spider-test/intake-two:latest": None}

    engine.images.remove(tarballs.two_layers_id)
    with pytest.raises(IntakeError, match=f"holds image {tarballs.two_layers_id}, expected {tarballs.one_layer_id}"):
        ensure_loaded(tarballs.one_layer_id, tarballs.two_layers, client=engine)
    assert not _image_ids(engine) & tarballs.ids  # refused before loading anything


def test_a_local_tag_keeps_working_within_the_layer_cap(engine, tarballs, work_dir):
    with tarballs.two_layers.open("rb") as stream:
        engine.images.load(stream)  # tagged spider-test/intake-two:latest, removed by the fixture with the image
    with pytest.raises(IntakeError, match=r"'spider-test/intake-two:latest': expected an image of at most 1 layers, "
                                          r"found 2 layers"):
        docker_pinner("spider-test/intake-two:latest", work_dir, ImageLimits(layers=1))
    pinned = docker_pinner("spider-test/intake-two:latest", work_dir)
    assert pinned.digest == tarballs.two_layers_id
    assert pinned.archive_path.is_file()


def test_image_limits_are_positive_integers():
    assert ImageLimits() == ImageLimits(tarball_bytes=10 * 1000**3, unpacked_bytes=10 * 1000**3, layers=125)
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="positive integer"):
            ImageLimits(layers=bad)  # type: ignore[arg-type]
