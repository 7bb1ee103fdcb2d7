"""Writes into its image's VOLUME /data/. (a bounded tmpfs here), then a valid segmentation."""
import os
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

with open("/data/scratch.bin", "wb") as stream:
    stream.write(bytes(1 << 20))
print("wrote 1 MiB to /data on", os.statvfs("/data").f_blocks * os.statvfs("/data").f_frsize, "bytes of space")
mha.write_zeros()
