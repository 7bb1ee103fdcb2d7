"""Runs, succeeds, and writes nothing."""
print("done, but nothing written")
