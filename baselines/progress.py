"""A progress bar on stderr: tqdm when it is installed, else a line every few percent."""

from __future__ import annotations

import sys


def progress_bar(*, total: int, initial: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # a bare GPU machine may lack it
        return _Lines(total=total, initial=initial, enabled=enabled)
    return tqdm(total=total, initial=initial, disable=not enabled, unit="it", desc="train",
                dynamic_ncols=True, file=sys.stderr)


class _Lines:
    def __init__(self, *, total: int, initial: int, enabled: bool):
        self.total, self.count, self.enabled = total, initial, enabled
        self.step = max(1, total // 20)
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and (self.count % self.step == 0 or self.count == self.total):
            print(f"train: {self.count}/{self.total} {self.postfix}", file=sys.stderr, flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        pass
