"""Where tasks run: in this process (tests, small jobs) or as Ray tasks (the default).

One abstraction for every job that fans out: extraction sends chunks of windows
(cluster.run.extract), training sends LOSO folds (cluster.run.train). A job hands
:meth:`run` a function, the arguments every task shares (sent to the workers once) and
``(key, args)`` per task; it gets back ``(key, result or exception)`` as tasks finish, in
any order, whichever executor runs them. An exception raised by a task is handed back,
never raised, so one bad video or fold does not stop the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K")
Outcome = tuple[K, Any]  # (key, result or the exception the task raised)
EXECUTORS = ("ray", "local")
#: Set (to anything) to have Ray's start-up messages and its workers' output (native
#: libraries' logs included) printed by the driver; unset, workers write only to Ray's log
#: files and Ray says only errors (``mespot -v`` sets it).
WORKER_LOGS_ENV = "MESPOT_WORKER_LOGS"


@dataclass(frozen=True)
class TaskOptions:
    """How each task runs on Ray (ignored in-process).

    ``retries``: times a task is retried when its worker dies (killed by the OS, a node
    lost); with ``retry_exceptions`` also when the task itself raises. ``gpu_fraction``:
    the share of a GPU a task asks for when the cluster has GPUs (none otherwise).
    """

    retries: int = 3
    retry_exceptions: bool = False
    gpu_fraction: float = 0.0


class LocalExecutor:
    """Runs tasks one after another in this process."""

    name = "local"

    def run(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[K, tuple]],
        shared: tuple = (),
        options: TaskOptions | None = None,
    ) -> Iterator[Outcome]:
        for key, args in tasks:
            try:
                yield key, fn(*shared, *args)
            except Exception as e:  # one bad task must not stop the others
                yield key, e

    def other_nodes(self) -> int:
        """Nodes other than this process's that run tasks: none in-process."""
        return 0

    def close(self) -> None:
        pass


def connect_ray(address: str | None = None, num_cpus: int | None = None):
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start a local one.

    Ray >= 2.52 turns token authentication on for the clusters it starts; a driver
    joining a remote cluster needs its token (RAY_AUTH_TOKEN or ~/.ray/auth_token).
    """
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    verbose = bool(os.environ.get(WORKER_LOGS_ENV))
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    return ray


class RayExecutor:
    """Fans tasks out as Ray tasks (one CPU each), a bounded number in flight at a time."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = connect_ray(address, num_cpus)
        resources = self.ray.cluster_resources()
        self.gpus = resources.get("GPU", 0)
        self.max_in_flight = max(2, 2 * int(resources.get("CPU", 1)))

    def other_nodes(self) -> int:
        """Alive nodes with CPUs other than the driver's: tasks may run there, so every
        path they open must be reachable from there too."""
        me = self.ray.get_runtime_context().get_node_id()
        return sum(
            1
            for n in self.ray.nodes()
            if n.get("Alive") and n.get("NodeID") != me and n.get("Resources", {}).get("CPU", 0)
        )

    def _remote(self, fn: Callable[..., Any], options: TaskOptions):
        return self.ray.remote(
            num_cpus=1,
            num_gpus=options.gpu_fraction if self.gpus else 0,
            max_retries=options.retries,
            retry_exceptions=options.retry_exceptions,
        )(fn)

    def run(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[K, tuple]],
        shared: tuple = (),
        options: TaskOptions | None = None,
    ) -> Iterator[Outcome]:
        ray = self.ray
        task = self._remote(fn, options or TaskOptions())
        refs = [ray.put(a) for a in shared]  # sent to the object store once
        todo = iter(tasks)
        in_flight: dict = {}

        def submit() -> bool:
            nxt = next(todo, None)
            if nxt is None:
                return False
            key, args = nxt
            in_flight[task.remote(*refs, *args)] = key
            return True

        while len(in_flight) < self.max_in_flight and submit():
            pass
        while in_flight:
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            key = in_flight.pop(ref)
            try:
                yield key, ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                yield key, e.as_instanceof_cause()
            except ray.exceptions.RayError as e:  # worker died more often than retried
                yield key, e
            submit()

    def close(self) -> None:
        pass


def make_executor(kind: str, address: str | None = None, num_cpus: int | None = None):
    """``"local"`` (this process) or ``"ray"`` (the cluster at ``address``, else a local Ray)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus)
    raise ValueError(f"unknown executor {kind!r}; choose from {EXECUTORS}")


def is_local_path(uri: str) -> bool:
    """Whether ``uri`` is a path on this machine's own disk (no protocol, or file://)."""
    return "://" not in uri or uri.startswith(("file://", "local://"))


def require_shared(executor, paths: dict[str, list[str]], shared_fs: bool = False) -> None:
    """Refuse local paths when tasks may run on other machines, before any work.

    ``paths`` maps what a path is ("corpus", "store") to the paths or URIs the job uses.
    ``shared_fs`` says the local paths are on a mount every node sees (NFS, a shared volume).
    """
    others = 0 if shared_fs else executor.other_nodes()
    if not others:
        return
    local = {what: sorted({p for p in ps if is_local_path(p)}) for what, ps in paths.items()}
    local = {what: ps for what, ps in local.items() if ps}
    if local:
        named = "; ".join(f"{what} {', '.join(ps[:3])}" for what, ps in local.items())
        raise ValueError(
            f"the Ray cluster has {others} other nodes, which cannot see local "
            f"paths ({named}): put them on object storage (s3://bucket/prefix, any fsspec URI) "
            "or, when the path is a shared mount every node sees, pass --shared-fs"
        )
