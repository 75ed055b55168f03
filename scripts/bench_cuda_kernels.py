"""Kernel-level CUDA timings on storage (no Tensor/autograd): Python cost of one table call, and bandwidth of
large elementwise/reduction/softmax kernels against the device-to-device copy ceiling.

    python scripts/bench_cuda_kernels.py
"""

from __future__ import annotations

import numpy as np

from keydnn.bench import measure
from keydnn.bench.harness import stamp_line
from keydnn.infrastructure.backends import cuda
from keydnn.infrastructure.backends.cuda import _cudart


def _event_ms(fn, repeats: int = 20) -> float:
    """Median device milliseconds of ``fn`` timed with CUDA events."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = _cudart.Event(), _cudart.Event()
        start.record()
        fn()
        end.record()
        times.append(start.elapsed_ms(end))
    return float(np.median(times))


def main() -> None:
    kt = cuda.table(0)
    sync = lambda: cuda.synchronize(0)  # noqa: E731
    rows = []
    a1, b1 = kt.zeros((1,), np.float32), kt.zeros((1,), np.float32)
    rows.append(("tiny add call (us, async)", measure(lambda: kt.add(a1, b1), number=5000, repeats=9).us))
    rows.append(
        ("tiny add + scalar (us, async)", measure(lambda: kt.multiply(a1, 2.0), number=5000, repeats=9).us)
    )
    rows.append(
        ("tiny add out= (us, async)", measure(lambda: kt.add(a1, b1, out=a1), number=5000, repeats=9).us)
    )
    from keydnn.infrastructure.backends.cuda import _lib

    raw = _lib.lib.kd_binary
    pa, pb = a1.ptr, b1.ptr
    rows.append(
        (
            "raw kd_binary launch (us, async)",
            measure(lambda: raw(_lib.pack_binary(0, 0, pa, pa, pb, 1), None), number=5000, repeats=9).us,
        )
    )
    rows.append(
        ("tiny add + sync each (us)", measure(lambda: (kt.add(a1, b1), sync()), number=2000, repeats=9).us)
    )
    try:
        import torch

        ta, tb = torch.zeros(1, device="cuda:0"), torch.zeros(1, device="cuda:0")
        rows.append(
            ("torch tiny add, for reference (us, async)", measure(lambda: ta + tb, number=5000, repeats=9).us)
        )
    except ImportError:
        pass
    m = kt.zeros((32, 64), np.float32)
    rows.append(
        (
            "broadcast add (32,64)+(64,) (us)",
            measure(lambda: kt.add(m, kt.getitem(m, (0,))), number=2000, repeats=9).us,
        )
    )
    rows.append(("sum (32,64) axis 0 (us)", measure(lambda: kt.sum(m, 0, False), number=2000, repeats=9).us))
    sync()

    n = 64 * 2**20
    a = kt.uniform((n,), 0.0, 1.0, np.float32, 1)
    b = kt.uniform((n,), 0.0, 1.0, np.float32, 2)
    out = kt.empty((n,), np.float32)
    nbytes = 4 * n
    copy_ms = _event_ms(lambda: kt.copyto(out, a))
    add_ms = _event_ms(lambda: kt.add(a, b, out=out))
    rows.append(("D2D copy 256 MiB (GB/s, read+write)", 2 * nbytes / copy_ms / 1e6))
    rows.append(("add 64M f32 (GB/s, 2 reads + write)", 3 * nbytes / add_ms / 1e6))
    rows.append(("add / copy bandwidth ratio", (3 * nbytes / add_ms) / (2 * nbytes / copy_ms)))
    rows.append(
        ("add scalar 64M f32 (GB/s)", 2 * nbytes / _event_ms(lambda: kt.multiply(a, 2.0, out=out)) / 1e6)
    )
    rows.append(("exp 64M f32 (GB/s)", 2 * nbytes / _event_ms(lambda: kt.exp(a)) / 1e6))
    rows.append(("sum 64M f32 (GB/s)", nbytes / _event_ms(lambda: kt.sum(a, None, False)) / 1e6))
    mat = kt.reshape(a, (8192, 8192))
    rows.append(("sum rows 8192x8192 (GB/s)", nbytes / _event_ms(lambda: kt.sum(mat, 1, False)) / 1e6))
    rows.append(("sum cols 8192x8192 (GB/s)", nbytes / _event_ms(lambda: kt.sum(mat, 0, False)) / 1e6))
    rows.append(("softmax rows 8192x8192 (GB/s)", 2 * nbytes / _event_ms(lambda: kt.softmax(mat, 1)) / 1e6))
    rows.append(
        (
            "transpose copy 8192^2 (GB/s)",
            2 * nbytes / _event_ms(lambda: kt.ascontiguousarray(kt.transpose(mat, (1, 0)))) / 1e6,
        )
    )
    params = [kt.uniform((1 << 16,), 0.0, 1.0, np.float32, i) for i in range(100)]
    grads = [kt.uniform((1 << 16,), 0.0, 1.0, np.float32, i + 100) for i in range(100)]
    ms = [kt.zeros((1 << 16,), np.float32) for _ in params]
    vs = [kt.zeros((1 << 16,), np.float32) for _ in params]
    adam_ms = _event_ms(lambda: kt.adam_step(params, grads, ms, vs, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False))
    rows.append(("adam 100 x 64K f32 (GB/s, 4 reads + 3 writes)", 7 * 4 * (100 << 16) / adam_ms / 1e6))
    print(stamp_line())
    print("| measurement | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
