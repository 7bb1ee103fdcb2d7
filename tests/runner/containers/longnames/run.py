"""Writes its (valid) segmentation, and a chain of folders with long names whose path is longer
than PATH_MAX (made by descriptor: no path that long can be passed to the kernel)."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
name = "L" * 250
fd = os.open("/output", os.O_RDONLY | os.O_DIRECTORY)
for _ in range(30):  # 30 * 251 bytes, within 64 levels
    os.mkdir(name, dir_fd=fd)
    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = child
leaf = os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
os.write(leaf, b"at the bottom\n")
os.close(leaf)
os.close(fd)
print("made a chain of 30 folders with 250-character names", flush=True)
