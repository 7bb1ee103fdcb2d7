"""Writes thousands of tiny files into /output."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

mha.write_zeros()
for index in range(5000):
    with open(f"/output/junk-{index}.txt", "w") as stream:
        stream.write("x")
