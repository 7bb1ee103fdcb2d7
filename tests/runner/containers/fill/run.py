"""Fills /output with gigabytes, file after file, and never stops trying."""
import os
import time

print("filling /output", flush=True)
block = os.urandom(1024 * 1024)
written = 0
index = 0
while True:
    try:
        with open(f"/output/images/sagittal-spine-mr-segmentation/fill-{index}.bin", "wb") as stream:
            for _ in range(16):
                stream.write(block)
                written += len(block)
        index += 1
        if index % 8 == 0:
            print(f"written {written >> 20} MiB", flush=True)
    except OSError as error:
        print(f"write failed after {written >> 20} MiB: {error}", flush=True)
        index += 1
        time.sleep(0.05)
