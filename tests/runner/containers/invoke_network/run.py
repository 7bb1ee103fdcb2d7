"""On POST /invoke tries to reach the outside; records that it could not, writes an empty segmentation
and answers 201 (the network namespace it shares with the runner's helper has only loopback)."""
import os
import socket
import sys

sys.path.insert(0, "/app")
import mha  # noqa: E402
import server  # noqa: E402


def invoke():
    reached = []
    for host, port in (("1.1.1.1", 53), ("8.8.8.8", 443), ("169.254.169.254", 80), ("172.17.0.1", 2375)):
        try:
            socket.create_connection((host, port), timeout=2).close()
            reached.append(f"{host}:{port}")
        except OSError as error:
            print(f"tcp {host}:{port} blocked: {error}", flush=True)
    try:
        print("dns resolved:", socket.getaddrinfo("deb.debian.org", 80), flush=True)
        reached.append("dns")
    except OSError as error:
        print(f"dns blocked: {error}", flush=True)
    print("interfaces:", ",".join(sorted(os.listdir("/sys/class/net"))), flush=True)
    print("NETWORK REACHED:" if reached else "no network", reached, flush=True)
    mha.write_zeros()
    return 201


server.serve(invoke=invoke)
