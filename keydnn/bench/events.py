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


BatchTimer = Callable[[Callable[[], Any], int], float]


def batch_timer(framework: str) -> BatchTimer:
    """``timer(fn, calls)``: milliseconds per call of ``calls`` calls of ``fn`` between two CUDA events of
    ``framework``'s own ("keydnn" or "torch"), after a synchronisation; for scripts whose rounds alternate
    between the frameworks (each framework timed with its own events, never the other's runtime)."""
    if framework == "torch":
        import torch

        t_start, t_end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def torch_timer(fn: Callable[[], Any], calls: int) -> float:
            torch.cuda.synchronize()
            t_start.record()
            for _ in range(calls):
                fn()
            t_end.record()
            t_end.synchronize()
            return t_start.elapsed_time(t_end) / calls
        return torch_timer
    from keydnn.infrastructure.backends import cuda
    from keydnn.infrastructure.backends.cuda._cudart import Event

    k_start, k_end = Event(), Event()

    def keydnn_timer(fn: Callable[[], Any], calls: int) -> float:
        cuda.synchronize(0)
        k_start.record()
        for _ in range(calls):
            fn()
        k_end.record()
        return k_start.elapsed_ms(k_end) / calls
    return keydnn_timer
