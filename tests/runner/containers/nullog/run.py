"""Fails with NUL, escape codes and undecodable bytes in its last stderr line."""
import sys

sys.stdout.buffer.write(b"starting\n")
sys.stdout.flush()
sys.stderr.buffer.write(b"fatal:\x00 bad \x1b[31mthing\xff\xfe here\n")
sys.stderr.flush()
sys.exit(3)
