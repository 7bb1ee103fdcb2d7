"""Allocates (and touches) memory far past any test limit."""
blocks = []
for step in range(200):
    blocks.append(bytearray(32 * 1024 * 1024))  # zero-filled: the pages are written
    print(f"allocated {32 * (step + 1)} MiB", flush=True)
