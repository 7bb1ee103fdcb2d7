"""Writes about 2 MiB of log lines, then a valid output."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402

for index in range(20000):
    print(f"line {index:05d} " + "x" * 90)
print("LAST LINE", flush=True)
mha.write_zeros()
