"""Where tasks run: a local process pool, or Ray tasks placed on a cluster by the resources they ask.

An executor takes a picklable task function and its argument and returns a
concurrent.futures.Future. The engine keeps every database write to itself; tasks only run a
container or score a case and return a frozen dataclass.

Ray: each task asks for the phase's CPUs, memory and GPUs (`Resources`), so Ray places GPU
jobs on nodes that have a GPU; the task runs on that node with the node's own Docker engine and
reads and writes the shared work folder. Ray never retries a task (max_retries=0): retries of
interrupted jobs belong to the engine, which counts attempts in the registry.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

from evaluation.workers import exit_with_parent
from submissions.errors import EngineError

EXECUTORS = ("local", "ray")
RAY_ADDRESS_ENV = "RAY_ADDRESS"


@dataclass(frozen=True)
class Resources:
    """What one task needs from the node it runs on."""

    cpus: float = 1.0
    memory_bytes: int | None = None
    gpus: int = 0


SCORING_RESOURCES = Resources(cpus=1.0)


class Executor(Protocol):
    capacity: int  # how many tasks the engine keeps in flight

    def submit(self, task: Callable[[Any], Any], argument: Any, *, resources: Resources) -> Future: ...

    def close(self) -> None: ...

    def abandon(self) -> None: ...


class LocalExecutor:
    """A pool of `workers` fresh ('spawn') processes on this machine; resources are not enforced
    here (the container runner enforces the phase's limits itself)."""

    def __init__(self, workers: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise EngineError(f"--workers must be a positive integer, found {workers!r}")
        self.capacity = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=exit_with_parent)

    def submit(self, task, argument, *, resources: Resources) -> Future:
        return self._pool.submit(task, argument)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def abandon(self) -> None:
        """Stop without waiting for running tasks (used when the engine is interrupted)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _call(task, argument):
    """A task in a Ray worker. The worker's main module imports ray, and the scoring guard's children
    run it again (multiprocessing's way): their forkserver loads ray once instead."""
    from evaluation.guard import preload_in_children

    preload_in_children("ray")
    return task(argument)


class RayExecutor:
    """Tasks on a Ray cluster at `address` (else $RAY_ADDRESS, else a Ray started on this machine).

    `capacity` defaults to the cluster's CPU count: Ray queues whatever does not fit yet.
    """

    def __init__(self, *, address: str | None = None, capacity: int | None = None):
        try:
            import ray
        except ImportError as error:
            raise EngineError(
                "the Ray executor needs the 'cluster' extra: pip install 'spider-harness[cluster]'"
            ) from error
        self._ray = ray
        address = address or os.environ.get(RAY_ADDRESS_ENV) or None
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
        except Exception as error:  # ConnectionError, RuntimeError, ValueError from Ray
            where = address or "a local Ray"
            raise EngineError(f"cannot connect to Ray at {where}: {error}") from error
        if capacity is None:
            capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if capacity < 1:
            raise EngineError(f"--workers must be a positive integer, found {capacity!r}")
        self.capacity = capacity
        self._remote = ray.remote(max_retries=0)(_call)

    def submit(self, task, argument, *, resources: Resources) -> Future:
        options: dict[str, Any] = {"num_cpus": resources.cpus, "num_gpus": resources.gpus}
        if resources.memory_bytes:
            options["memory"] = resources.memory_bytes
        return self._remote.options(**options).remote(task, argument).future()

    def close(self) -> None:
        self._ray.shutdown()

    def abandon(self) -> None:
        self._ray.shutdown()


@contextmanager
def opened_executor(kind: str, *, workers: int | None = None, ray_address: str | None = None) -> Iterator[Executor]:
    """An executor for a block: closed after it, abandoned (its tasks cancelled) if it fails."""
    executor = make_executor(kind, workers=workers, ray_address=ray_address)
    try:
        yield executor
    except BaseException:
        executor.abandon()
        raise
    executor.close()


def make_executor(kind: str, *, workers: int | None = None, ray_address: str | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor(1 if workers is None else workers)
    if kind == "ray":
        return RayExecutor(address=ray_address, capacity=workers)
    raise EngineError(f"--executor must be one of {list(EXECUTORS)}, found {kind!r}")
