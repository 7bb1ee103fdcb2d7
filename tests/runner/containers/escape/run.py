"""Tries to write outside /output and /tmp, and to gain privileges; exits 4 if anything worked."""
import glob
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

escaped = []
targets = ["/spider-escape", "/etc/spider-escape", "/usr/spider-escape", "/root/spider-escape",
           "/var/tmp/spider-escape", "/home/spider-escape", "/input/spider-escape",
           "/input/images/sagittal-spine-mri/spider-escape", "/proc/sysrq-trigger"]
for target in targets + glob.glob("/input/**/*.mha", recursive=True) + ["/input/inputs.json", "/etc/passwd"]:
    try:
        with open(target, "a") as stream:
            stream.write("escaped\n")
        escaped.append(target)
        print(f"WROTE {target}")
    except OSError as error:
        print(f"denied {target}: {error.strerror}")
for attempt, call in (("setuid(0)", lambda: os.setuid(0)), ("chmod /etc", lambda: os.chmod("/etc", 0o777)),
                      ("mknod", lambda: os.mknod("/tmp/disk", 0o600 | 0o060000, os.makedev(8, 0)))):
    try:
        call()
        escaped.append(attempt)
        print(f"WORKED {attempt}")
    except OSError as error:
        print(f"denied {attempt}: {error.strerror}")
with open("/tmp/scratch", "w") as stream:
    stream.write("/tmp is writable\n")
if escaped:
    sys.exit(4)
mha.write_zeros()
print("nothing escaped")
