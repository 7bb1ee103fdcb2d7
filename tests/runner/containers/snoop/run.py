"""Looks for the ground truth, the Docker socket and anything else it should not see, and
reports its own view (user, capabilities, mounts, limits) as one JSON line starting SNOOP."""
import json
import os
import stat
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402


def read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except OSError as error:
        return f"unreadable: {error.strerror}"


status = dict(line.split(":\t", 1) for line in read("/proc/self/status").splitlines() if ":\t" in line)
report = {
    "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "groups": os.getgroups(),
    "cap_eff": status.get("CapEff", "").strip(), "cap_prm": status.get("CapPrm", "").strip(),
    "cap_bnd": status.get("CapBnd", "").strip(), "no_new_privs": status.get("NoNewPrivs", "").strip(),
    "seccomp": status.get("Seccomp", "").strip(),
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "mounts": [],
    "sockets": [], "mha_files": [], "mask_folders": [], "suspicious_env": [],
    "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes").strip(),
    "memsw_limit": read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").strip(),
    "pids_max": read("/sys/fs/cgroup/pids/pids.max").strip(),
    "pid1": read("/proc/1/cmdline").replace("\0", " ").strip(),
    "home": os.environ.get("HOME"),
    "platform_env": {key: os.environ.get(key) for key in ("PYTHONUNBUFFERED", "LOG_LEVEL")},
}
shm = os.statvfs("/dev/shm")
report["shm_bytes"] = shm.f_blocks * shm.f_frsize
# inputs.json read the ways the platform's templates do: 2026 (`socket`) and before (`interface`).
with open("/input/inputs.json") as stream:
    sockets = json.load(stream)
report["inputs_json"] = {"socket": [entry["socket"]["slug"] for entry in sockets],
                         "interface": [entry["interface"]["slug"] for entry in sockets],
                         "image_file": [entry["image"]["pk"] + ".mha" for entry in sockets],
                         "value_pk_is_int": [isinstance(entry["pk"], int) for entry in sockets]}
for line in read("/proc/self/mountinfo").splitlines():
    fields = line.split()
    separator = fields.index("-")
    report["mounts"].append({"target": fields[4], "options": fields[5], "fstype": fields[separator + 1],
                             "super_options": fields[separator + 3] if len(fields) > separator + 3 else ""})
for line in read("/proc/self/limits").splitlines():
    if line.startswith("Max file size") or line.startswith("Max core file size"):
        report[line[:18].strip().lower().replace(" ", "_")] = line[26:47].strip()
for known in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
    if os.path.lexists(known):
        report["sockets"].append(known)
for root, folders, files in os.walk("/"):
    if root in ("/proc", "/sys", "/dev") or root.startswith(("/proc/", "/sys/", "/dev/")):
        folders[:] = []
        continue
    for name in folders:
        if name.lower() in ("masks", "ground_truth", "groundtruth", "ground-truth"):
            report["mask_folders"].append(os.path.join(root, name))
    for name in files:
        path = os.path.join(root, name)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISSOCK(mode):
            report["sockets"].append(path)
        if name.lower().endswith((".mha", ".nii.gz", ".nii", ".nrrd")):
            report["mha_files"].append(path)
for key in os.environ:
    if any(word in key.upper() for word in ("DOCKER", "MASK", "TRUTH", "REFERENCE", "TOKEN", "SECRET", "PASSWORD")):
        report["suspicious_env"].append(key)
try:
    open("/spider-root-write", "w").close()
    report["root_writable"] = True
except OSError:
    report["root_writable"] = False
try:
    with open("/data/probe", "w") as stream:
        stream.write("x")
    report["data_volume"] = next((m["fstype"] for m in report["mounts"] if m["target"] == "/data"), "not mounted")
except OSError as error:
    report["data_volume"] = f"not writable: {error.strerror}"
print("SNOOP " + json.dumps(report, sort_keys=True), flush=True)
mha.write_zeros()
