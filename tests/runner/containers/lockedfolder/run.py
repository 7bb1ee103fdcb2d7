"""Writes its (valid) segmentation, and next to it a folder of notes that it makes unreadable (mode 000)."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
os.mkdir("/output/locked")
for index in range(3):
    with open(f"/output/locked/note-{index}.txt", "w") as stream:
        stream.write("hidden\n")
os.chmod("/output/locked", 0)
print("locked a folder next to the segmentation", flush=True)
