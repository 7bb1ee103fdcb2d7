"""Fails with a Python error (exit code 1) after some output."""
print("loading model ...", flush=True)
raise RuntimeError("model weights not found at /opt/model.pt")
