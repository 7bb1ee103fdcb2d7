"""The offline base image: cleaning, a byte-identical tar, a fixed image id, careful tagging."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from pathlib import Path

import pytest

from challenge.cli import main
from evaluation.runner import base_image as base

EPOCH = 1686355200


def _fake_root(root: Path) -> Path:
    """A tiny tree with what a debootstrap leaves behind that varies from run to run."""
    for folder in ("etc", "usr/bin", "usr/lib/python3.11/json/__pycache__", "usr/local/bin", "var/log/apt",
                   "var/lib/apt/lists", "var/cache/ldconfig", "var/cache/apt/archives", "dev", "proc", "tmp"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/python3").write_bytes(b"\x7fELF python")
    os.link(root / "usr/bin/python3", root / "usr/bin/python3.11")
    (root / "usr/lib/python3.11/json/__init__.py").write_text("# json\n")
    (root / "usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc").write_bytes(os.urandom(16))
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    (root / "var/log/dpkg.log").write_text(f"{time.time()} install python3\n")
    (root / "var/log/apt/history.log").write_text(f"{time.time()}\n")
    (root / "var/lib/apt/lists/deb.debian.org_Packages").write_text("Package: x\n")
    (root / "var/cache/ldconfig/aux-cache").write_bytes(os.urandom(8))
    (root / "var/cache/apt/archives/python3.deb").write_bytes(b"deb")
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    (root / "etc/hostname").write_text("build-host-42\n")
    (root / "etc/shadow").write_text("root:*:20783:0:99999:7:::\nnobody:*:20783:0:99999:7:::\n")
    (root / "dev/null").write_text("")  # stands in for a device node
    os.symlink("usr/bin", root / "bin")
    return root


def test_clean_root_removes_what_varies_and_keeps_the_system(tmp_path):
    root = _fake_root(tmp_path / "root")
    base.clean_root(root, epoch=EPOCH)
    assert not list(root.rglob("__pycache__"))
    assert not (root / "var/cache/ldconfig/aux-cache").exists()
    assert not (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").exists()
    assert list((root / "var/log").iterdir()) == []
    assert list((root / "var/lib/apt/lists").iterdir()) == []
    assert list((root / "var/cache/apt").iterdir()) == []
    assert list((root / "dev").iterdir()) == []
    assert (root / "etc/resolv.conf").read_text() == ""
    assert (root / "etc/hostname").read_text() == "localhost\n"
    day = EPOCH // 86400
    assert (root / "etc/shadow").read_text() == f"root:*:{day}:0:99999:7:::\nnobody:*:{day}:0:99999:7:::\n"
    assert (root / "usr/bin/python3").read_bytes() == b"\x7fELF python"
    assert os.readlink(root / "usr/local/bin/python") == "/usr/bin/python3"
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777


def test_two_trees_built_at_different_times_give_a_byte_identical_tar(tmp_path):
    digests = []
    for index in range(2):
        root = _fake_root(tmp_path / f"root{index}")
        base.clean_root(root, epoch=EPOCH)
        os.utime(root / "usr/bin/python3", (time.time() + index * 1000, time.time() + index * 1000))
        digests.append(base.write_rootfs_tar(root, tmp_path / f"rootfs{index}.tar", epoch=EPOCH))
        time.sleep(0.01)
    assert digests[0] == digests[1]
    assert (tmp_path / "rootfs0.tar").read_bytes() == (tmp_path / "rootfs1.tar").read_bytes()
    assert digests[0] == hashlib.sha256((tmp_path / "rootfs0.tar").read_bytes()).hexdigest()


def test_tar_has_sorted_names_fixed_mtime_numeric_owners_and_hard_links(tmp_path):
    root = _fake_root(tmp_path / "root")
    base.clean_root(root, epoch=EPOCH)
    base.write_rootfs_tar(root, tmp_path / "rootfs.tar", epoch=EPOCH)
    with tarfile.open(tmp_path / "rootfs.tar") as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert {m.mtime for m in members} == {EPOCH}
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    by_name = {m.name: m for m in members}
    assert by_name["usr/bin/python3"].isreg()
    assert by_name["usr/bin/python3.11"].islnk() and by_name["usr/bin/python3.11"].linkname == "usr/bin/python3"
    assert by_name["bin"].issym() and by_name["bin"].linkname == "usr/bin"


def test_image_config_fixes_date_env_and_cmd():
    config = base.image_config(layer_digest="ab" * 32, epoch=EPOCH, architecture="amd64")
    assert config == base.image_config(layer_digest="ab" * 32, epoch=EPOCH, architecture="amd64")
    parsed = json.loads(config)
    assert parsed["created"] == "2023-06-10T00:00:00Z"
    assert parsed["config"]["Env"] == list(base.ENV)
    assert "LANG=C.UTF-8" in parsed["config"]["Env"]
    assert parsed["config"]["Cmd"] == ["python3"]
    assert parsed["rootfs"]["diff_ids"] == ["sha256:" + "ab" * 32]


def test_source_date_epoch_overrides_the_default(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert base.source_date_epoch() == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(base.BaseImageError, match="SOURCE_DATE_EPOCH"):
        base.source_date_epoch()


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_rebuilding_from_the_cache_gives_the_same_image_id(docker_client, base_image, capsys):
    cache = base.default_cache_dir()
    if not (cache / f"rootfs-{base.SUITE}-{base.source_date_epoch()}-r{base.RECIPE_VERSION}.tar.sha256").is_file():
        pytest.skip(f"the base image was not built on this machine (no cache in {cache})")
    first = base.build_base_image(docker_client, cache_dir=cache)
    assert first.image_id == base_image
    assert first.debootstrap_seconds is None  # the cached tar was reused
    assert main(["images", "base", "--cache-dir", str(cache)]) == 0
    printed = capsys.readouterr().out
    assert f"image {base_image}" in printed
    assert "tagged spider/python-base:3.11-bookworm" in printed
    assert docker_client.images.get(base.BASE_TAG).id == base_image
    attrs = docker_client.images.get(base_image).attrs
    assert attrs["Created"].startswith("2023-06-10")
    assert attrs["Config"]["Env"] == list(base.ENV)


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_a_foreign_image_keeps_its_tag(docker_client, base_image, algorithm_image):
    foreign = algorithm_image("noop")
    # An image built FROM the base inherits its label but has more than one layer: not ours to move.
    docker_client.images.get(foreign).tag("spider-test/foreign", "1")
    try:
        assert not base.tag_image(docker_client, base_image, "spider-test/foreign:1", keep_foreign=True)
        assert docker_client.images.get("spider-test/foreign:1").id == foreign
        assert base.tag_image(docker_client, base_image, "spider-test/fresh:1", keep_foreign=True)
        assert docker_client.images.get("spider-test/fresh:1").id == base_image
    finally:
        for tag in ("spider-test/foreign:1", "spider-test/fresh:1"):
            docker_client.images.remove(tag, noprune=True)


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_the_base_image_behaves_like_python_slim(docker_client, base_image):
    command = (
        "import sys, ssl, venv, pip, os, sysconfig; "
        "print(sys.version_info[:2], os.environ['LANG'], "
        "os.path.exists(sysconfig.get_path('stdlib') + '/EXTERNALLY-MANAGED'))"
    )
    output = docker_client.containers.run(base.SLIM_TAG, ["python", "-c", command], network_mode="none", remove=True)
    assert output.decode().strip() == "(3, 11) C.UTF-8 False"
