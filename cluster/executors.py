"""Where chunks run: in this process (tests, small jobs) or as Ray tasks (the default).

Both take the same (job, chunk) pairs and yield ``(job, results or exception)`` as
chunks finish, so the driver (cluster.extract) is the same whichever runs them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

from cluster.jobs import VideoJob, compute_chunk
from pipeline.config import FeatureConfig
from pipeline.features import WindowResult
from pipeline.windows import Window

log = logging.getLogger(__name__)
Chunk = tuple[VideoJob, list[Window]]
Outcome = tuple[VideoJob, list[Window], list[WindowResult] | BaseException]

#: A chunk task is retried this many times when its worker dies (killed by the OS, a
#: node lost); an exception raised by the extraction itself is not retried.
TASK_RETRIES = 3


class LocalExecutor:
    """Runs chunks one after another in this process."""

    name = "local"

    def run(self, chunks: Iterable[Chunk], config: FeatureConfig) -> Iterator[Outcome]:
        for job, windows in chunks:
            try:
                yield job, windows, compute_chunk(job.record, windows, config)
            except Exception as e:  # one bad video must not stop the others
                yield job, windows, e

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
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    return ray


class RayExecutor:
    """Fans chunks out as Ray tasks, a bounded number in flight at a time."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = connect_ray(address, num_cpus)
        self._task = self.ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(compute_chunk)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max(2, 2 * cpus)

    def run(self, chunks: Iterable[Chunk], config: FeatureConfig) -> Iterator[Outcome]:
        ray = self.ray
        todo = iter(chunks)
        config_ref = ray.put(config)
        in_flight: dict = {}

        def submit() -> bool:
            nxt = next(todo, None)
            if nxt is None:
                return False
            job, windows = nxt
            in_flight[self._task.remote(job.record, windows, config_ref)] = (job, windows)
            return True

        while len(in_flight) < self.max_in_flight and submit():
            pass
        while in_flight:
            done, _ = ray.wait(list(in_flight), num_returns=1)
            ref = done[0]
            job, windows = in_flight.pop(ref)
            try:
                yield job, windows, ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                yield job, windows, e.as_instanceof_cause()
            except ray.exceptions.RayError as e:  # worker died more often than retried
                yield job, windows, e
            submit()

    def close(self) -> None:
        pass
