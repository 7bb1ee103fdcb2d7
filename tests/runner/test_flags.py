"""The production flags, seen twice: as the engine applied them (the job's container.json, taken
from the container's attrs before removal) and as a container sees them from inside."""

from __future__ import annotations

import json

import pytest

from challenge.phases import Phase
from challenge.statuses import JobStatus
from evaluation.runner.docker_runner import (
    PLATFORM_ENVIRONMENT,
    RunnerSettings,
    container_options,
    default_user,
    run_job,
)
from evaluation.runner.errors import RunnerError


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_the_engine_applied_every_production_flag(docker_client, algorithm_image, input_image, test_phase, tmp_path):
    image_id = algorithm_image("good")
    job = run_job(
        docker_client,
        image_id=image_id,
        case="1_t1",
        input_image=input_image,
        phase=test_phase,
        job_dir=tmp_path / "job",
    )
    assert job.status is JobStatus.SUCCEEDED, job.reason
    audit = json.loads((tmp_path / "job" / "container.json").read_text())
    host = audit["HostConfig"]
    assert audit["Image"] == image_id and image_id.startswith("sha256:")
    assert audit["User"] == default_user() and not audit["User"].startswith("0:")
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["Memory"] == host["MemorySwap"] == test_phase.memory_bytes
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == test_phase.pids_limit
    assert host["Init"] is True
    assert host["ShmSize"] == test_phase.memory_bytes // 2
    assert host["Tmpfs"] == {"/tmp": f"size={test_phase.tmp_bytes},mode=1777,exec,nosuid,nodev"}
    assert not host["Binds"] and not host["Devices"] and not host["DeviceRequests"] and not host["VolumesFrom"]
    mounts = {m["Destination"]: m for m in audit["Mounts"]}
    assert sorted(mounts) == ["/input", "/output"]
    assert mounts["/input"]["RW"] is False and mounts["/output"]["RW"] is True
    assert {m["Type"] for m in mounts.values()} == {"bind"}
    assert mounts["/input"]["Source"] == str(tmp_path / "job" / "input")
    assert mounts["/output"]["Source"] == str(tmp_path / "job" / "output")


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_a_container_sees_no_privilege_no_network_no_ground_truth_no_socket(
    docker_client, algorithm_image, spider_data, input_image, test_phase, tmp_path
):
    volumes_before = {v.id for v in docker_client.volumes.list()}
    job = run_job(
        docker_client,
        image_id=algorithm_image("snoop"),
        case="1_t1",
        input_image=input_image,
        phase=test_phase,
        job_dir=tmp_path / "job",
    )
    assert job.status is JobStatus.SUCCEEDED, job.reason
    line = next(line for line in job.log_path.read_text().splitlines() if line.startswith("SNOOP "))
    seen = json.loads(line[len("SNOOP "):])
    uid, gid = (int(v) for v in default_user().split(":"))
    assert (seen["uid"], seen["euid"], seen["gid"]) == (uid, uid, gid) and uid != 0
    assert seen["cap_eff"] == seen["cap_prm"] == seen["cap_bnd"] == "0000000000000000"
    assert seen["no_new_privs"] == "1"
    assert seen["seccomp"] == "2"  # the engine's default seccomp filter
    assert seen["interfaces"] == ["lo"]
    assert seen["root_writable"] is False
    assert seen["memory_limit"] == seen["memsw_limit"] == str(test_phase.memory_bytes)
    assert seen["pids_max"] == str(test_phase.pids_limit)
    assert seen["pid1"].startswith("/sbin/docker-init")
    assert seen["max_core_file_size"] == "0"
    assert seen["home"] == "/tmp"
    # As grand-challenge runs it: its environment, /dev/shm at half the memory, inputs.json both ways.
    assert seen["platform_env"] == {"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    assert seen["shm_bytes"] == test_phase.memory_bytes // 2
    assert seen["inputs_json"]["socket"] == seen["inputs_json"]["interface"] == ["sagittal-spine-mri"]
    assert seen["inputs_json"]["value_pk_is_int"] == [True]
    # What it looked for and must not find: the reference masks, other images, the Docker socket.
    assert seen["sockets"] == []
    assert seen["mask_folders"] == []
    assert len(seen["mha_files"]) == 1 and seen["mha_files"][0].startswith("/input/images/sagittal-spine-mri/")
    assert seen["suspicious_env"] == []
    assert str(spider_data) not in line
    mounts = {m["target"]: m for m in seen["mounts"]}
    assert mounts["/"]["options"].startswith("ro")
    assert mounts["/input"]["options"].startswith("ro")
    assert mounts["/output"]["options"].startswith("rw")
    assert (
        mounts["/tmp"]["fstype"] == "tmpfs"
        and f"size={test_phase.tmp_bytes // 1024}k" in mounts["/tmp"]["super_options"]
    )
    host_file_systems = {
        m["target"]
        for m in seen["mounts"]
        if m["fstype"] not in ("proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "overlay")
    }
    assert host_file_systems <= {
        "/input", "/output", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/usr/sbin/docker-init"
    }
    # The image's VOLUME /data became a bounded tmpfs, not a volume on the host.
    assert seen["data_volume"] == "tmpfs"
    assert {v.id for v in docker_client.volumes.list()} == volumes_before


def test_gpu_phases_request_one_gpu_and_cpu_phases_none(tmp_path):
    cpu = Phase(name="cpu", description="", time_limit_seconds=10, memory_bytes=2**30, cpus=2.5, gpus=0,
                pids_limit=128, tmp_bytes=2**26, output_limit_bytes=2**26)
    gpu = Phase(**{**cpu.__dict__, "name": "gpu", "gpus": 1})
    settings = RunnerSettings(user="1000:1000")
    kwargs = dict(input_dir=tmp_path / "in", output_dir=tmp_path / "out", settings=settings, image_config={})
    cpu_options = container_options(image_id="sha256:" + "0" * 64, phase=cpu, **kwargs)
    gpu_options = container_options(image_id="sha256:" + "0" * 64, phase=gpu, **kwargs)
    assert "device_requests" not in cpu_options
    (request,) = gpu_options["device_requests"]
    assert request["Count"] == 1 and request["Capabilities"] == [["gpu"]]
    assert cpu_options["nano_cpus"] == 2_500_000_000
    assert cpu_options["user"] == "1000:1000"


def test_image_volumes_become_tmpfs_and_home_is_kept_when_the_image_sets_it(tmp_path):
    phase = Phase(name="p", description="", time_limit_seconds=10, memory_bytes=2**30, cpus=1, gpus=0,
                  pids_limit=128, tmp_bytes=2**26, output_limit_bytes=2**26)
    options = container_options(
        image_id="sha256:" + "0" * 64, phase=phase, input_dir=tmp_path, output_dir=tmp_path,
        settings=RunnerSettings(user="1000:1000"),
        image_config={"Volumes": {"/data": {}, "/output": {}, "/cache/.": {}, "/models/": {}, "/data/./": {}},
                      "Env": ["HOME=/home/user"]},
    )
    # Paths are normalised: `VOLUME /cache/.` made Docker create a real volume beside a `/cache/.` tmpfs.
    assert sorted(options["tmpfs"]) == ["/cache", "/data", "/models", "/tmp"]
    assert options["environment"] == {**PLATFORM_ENVIRONMENT, "NVIDIA_VISIBLE_DEVICES": "void"}  # HOME: the image's


@pytest.mark.parametrize("user", ["0:0", "00:0", "000:1000", "root", "1000", "a:b", "\u0661\u0660\u0660\u0660:1000"])
def test_settings_refuse_root_and_names(user):
    with pytest.raises(RunnerError):
        RunnerSettings(user=user)


def _gpu_options(tmp_path, *, gpus: int, assigned):
    phase = Phase(name="p", description="", time_limit_seconds=10, memory_bytes=2**30, cpus=1, gpus=gpus,
                  pids_limit=128, tmp_bytes=2**26, output_limit_bytes=2**26)
    return container_options(
        image_id="sha256:" + "0" * 64, phase=phase, input_dir=tmp_path, output_dir=tmp_path,
        settings=RunnerSettings(user="1000:1000", gpu_device_ids=assigned),
        image_config={"Env": ["NVIDIA_VISIBLE_DEVICES=all"]},
    )


def test_a_job_granted_no_gpu_sees_none_whatever_the_image_says(tmp_path):
    options = _gpu_options(tmp_path, gpus=0, assigned=("0", "1"))
    assert "device_requests" not in options
    assert options["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_a_job_gets_the_gpus_its_process_was_assigned(tmp_path):
    (request,) = _gpu_options(tmp_path, gpus=1, assigned=("3", "5"))["device_requests"]
    assert request["DeviceIDs"] == ["3"] and not request.get("Count")
    assert request["Capabilities"] == [["gpu"]]
    (counted,) = _gpu_options(tmp_path, gpus=2, assigned=None)["device_requests"]
    assert counted["Count"] == 2 and not counted.get("DeviceIDs")
    with pytest.raises(RunnerError, match="grants 2 GPU"):
        _gpu_options(tmp_path, gpus=2, assigned=("4",))


def test_assigned_gpus_come_from_cuda_visible_devices(monkeypatch):
    from evaluation.runner.docker_runner import assigned_gpu_ids

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,7")
    assert assigned_gpu_ids() == ("2", "7") and RunnerSettings(user="1000:1000").gpu_device_ids == ("2", "7")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert assigned_gpu_ids() is None
