"""Worker processes that do not outlive the process that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
"""prctl option (linux/prctl.h): the signal the kernel sends a process when its parent ends."""


def exit_with_parent(poll_s: float = 0.5) -> None:
    """Pool worker initializer: the worker ends (os._exit) soon after its parent process is gone.

    Without it a worker of a killed engine or scorer (SIGKILL, OOM) blocks on its call queue for
    good, since it holds that pipe's write end itself, and keeps its resource tracker alive too.
    The parent is whoever started the worker (the pool's process under spawn, the forkserver under
    forkserver, which itself ends with the pool's process).
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def kill_with_parent() -> None:
    """The calling process gets SIGKILL from the kernel as soon as its parent ends (Linux: prctl
    PR_SET_PDEATHSIG, which also stops a process stuck in C code that holds the GIL, where no
    watcher thread could run), and ends by exit_with_parent as well (the only way elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
    exit_with_parent()
