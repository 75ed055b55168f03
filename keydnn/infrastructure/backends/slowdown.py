"""The benchmark canary: ``KEYDNN_BENCH_SLOWDOWN=<kernel>:<factor>`` makes one kernel ``factor`` times slower
in every kernel table, so a regression benchmark can prove that it notices. Off (and free) unless set.

The slowed kernel runs for real, then repeats itself ``floor(factor - 1)`` more times and spins on the clock
for the fractional remainder of the first call's duration: extra time that is busy CPU work (as a real
regression would be), proportional to the kernel's own cost at every input size. On CUDA a kernel call
returns once the work is queued, so there the added time is host time after the launch.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

ENV = "KEYDNN_BENCH_SLOWDOWN"


def parse(value: str | None) -> tuple[str, float] | None:
    """``"conv2d_forward:1.25"`` -> ("conv2d_forward", 1.25); empty or unset -> None."""
    if not value:
        return None
    name, sep, factor = value.rpartition(":")
    try:
        f = float(factor)
    except ValueError:
        f = float("nan")
    if not sep or not name or not math.isfinite(f) or f < 1.0:
        raise ValueError(f"{ENV} must be <kernel>:<factor> with factor >= 1 (e.g. conv2d_forward:1.25), "
                         f"got {value!r}")
    return name, f


def slowed(kernel: Callable[..., Any], factor: float,
           clock: Callable[[], float] = time.perf_counter) -> Callable[..., Any]:
    """``kernel`` wrapped to take ``factor`` times as long; wrapping a wrapped kernel returns it unchanged."""
    if getattr(kernel, "__keydnn_slowdown__", None) is not None:
        return kernel
    repeats, fraction = divmod(factor - 1.0, 1.0)
    repeats = int(repeats)

    @functools.wraps(kernel)
    def run(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        out = kernel(*args, **kwargs)
        spent = clock() - t0
        for _ in range(repeats):
            kernel(*args, **kwargs)
        deadline = clock() + fraction * spent
        while clock() < deadline:
            pass
        return out

    run.__keydnn_slowdown__ = factor
    return run


def apply(table: Any, setting: tuple[str, float] | None) -> Any:
    """Wrap the named kernel of a kernel table (a SimpleNamespace) in place; an unknown name is an error."""
    if setting is None:
        return table
    name, factor = setting
    kernel = getattr(table, name, None)
    if not callable(kernel):
        kernels = sorted(k for k, v in vars(table).items() if callable(v))
        raise ValueError(f"{ENV}: the {getattr(table, 'name', '?')} kernel table has no kernel {name!r}; "
                         f"kernels: {', '.join(kernels)}")
    setattr(table, name, slowed(kernel, factor))
    return table
