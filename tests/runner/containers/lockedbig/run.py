"""Hides 40 MiB (more than the test phase's 32 MiB output limit) in a folder of mode 000, next to a
valid segmentation."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
os.mkdir("/output/locked")
with open("/output/locked/big.bin", "wb") as stream:
    stream.truncate(40 * 1024**2)  # sparse: instant, and counted by its length
os.chmod("/output/locked", 0)
print("hid 40 MiB in a locked folder", flush=True)
