"""Native thread pools held to one worker's share while it extracts.

Extraction works on small images (a face's regions, ~170 px): OpenCV's parallel loops
and OpenBLAS's threads cost more to start and join there than they save, and on a
machine whose other cores are busy (Ray's other workers, another process) they fight
for them. A worker is given one CPU (Ray tasks ask for ``num_cpus=1``; the local
executor runs one task at a time), so its native pools get one thread: one process on
N cores is then never slower than pinned to one (BENCHMARKS.md, "Feature extraction,
one core").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2

#: Threads a worker's native libraries get: its share of CPUs (one per task).
WORKER_THREADS = 1


@contextmanager
def native_threads(n: int = WORKER_THREADS) -> Iterator[None]:
    """OpenCV's threads and the BLAS/OpenMP pools (threadpoolctl) limited to ``n`` inside
    the block; the earlier limits are restored after it."""
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    old = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        cv2.setNumThreads(old)
