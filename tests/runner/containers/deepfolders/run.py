"""Writes its (valid) segmentation, then folders with long names nested 400 levels deep."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
name = "D" * 200
fd = os.open("/output", os.O_RDONLY | os.O_DIRECTORY)
for _ in range(400):
    os.mkdir(name, dir_fd=fd)
    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = child
os.close(fd)
print("nested 400 folders", flush=True)
