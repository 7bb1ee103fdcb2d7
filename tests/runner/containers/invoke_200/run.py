"""Writes a valid output but answers POST /invoke with 200 instead of 201."""
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402
import server  # noqa: E402


def invoke():
    mha.write_zeros()
    return 200


server.serve(invoke=invoke)
