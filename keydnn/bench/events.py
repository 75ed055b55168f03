"""Device-side timing: seconds per call measured between CUDA events on the default stream, so host
overhead that overlaps queued GPU work is not counted (wall-clock timing with a synchronize counts it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keydnn.bench.harness import Timing, _timing


def event_timing(fn: Callable[[], Any], *, warmup: int = 3, repeats: int = 11, number: int = 1) -> Timing:
    """Time ``fn`` on cuda's default stream: ``repeats`` batches of ``number`` calls between two events."""
    from keydnn.infrastructure.backends import cuda
    from keydnn.infrastructure.backends.cuda._cudart import Event

    for _ in range(warmup):
        fn()
    cuda.synchronize()
    start, end = Event(), Event()
    samples = []
    for _ in range(repeats):
        start.record()
        for _ in range(number):
            fn()
        end.record()
        samples.append(start.elapsed_ms(end) * 1e-3 / number)
    cuda.synchronize()
    return _timing(samples, number)
