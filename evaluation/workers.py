"""Process-pool workers that do not outlive the process that started them."""

from __future__ import annotations

import os
import threading
import time


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
