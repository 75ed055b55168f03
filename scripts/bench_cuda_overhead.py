"""Where a tiny CUDA op's host time goes, layer by layer, beside PyTorch and CuPy in one process.

Each row adds one layer over the previous: the bare ctypes launch of KeyDNN's add kernel, the CUDA kernel
table's add (allocation, checks), the autograd Function without and with a recorded node, the Tensor
operator. Prints a markdown table stamped with the machine.

    python scripts/bench_cuda_overhead.py [--out reports/gpu/overhead.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keydnn.bench import measure_interleaved
from keydnn.bench.harness import publish, stamp_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from keydnn import Tensor
    from keydnn.infrastructure.backends import cuda, kernels_for
    from keydnn.infrastructure.backends.cuda import _lib
    from keydnn.infrastructure.backends.cuda.storage import DTYPE_CODES
    from keydnn.infrastructure.ops.elementwise import Add

    a, b = Tensor.rand((1,), device="cuda:0"), Tensor.rand((1,), device="cuda:0")
    g = Tensor.rand((1,), device="cuda:0", requires_grad=True)
    k, da, db = kernels_for(a.device), a.data, b.data
    out, code, launch = k.add(da, db), DTYPE_CODES[da.dtype], _lib.lib.kd_binary
    rows = [
        ("bare ctypes launch (kd_binary)",
         lambda: launch(_lib.pack_binary(_lib.ADD, code, out.ptr, da.ptr, db.ptr, 1), None)),
        ("+ kernel table add (allocation, checks)", lambda: k.add(da, db)),
        ("+ autograd Function, no node recorded", lambda: Add.apply(a, b)),
        ("+ Tensor operator a + b", lambda: a + b),
        ("Tensor a + b recording a node", lambda: g + b),
    ]
    sync = lambda: cuda.synchronize(0)  # noqa: E731
    fns = {name: (fn, sync) for name, fn in rows}
    try:
        import torch

        ta, tb = torch.rand(1, device="cuda"), torch.rand(1, device="cuda")
        fns[f"PyTorch {torch.__version__} a + b"] = (lambda: ta + tb, torch.cuda.synchronize)
    except ImportError:
        pass
    try:
        import cupy

        ca, cb = cupy.random.rand(1, dtype=cupy.float32), cupy.random.rand(1, dtype=cupy.float32)
        fns[f"CuPy {cupy.__version__} a + b"] = (lambda: ca + cb, cupy.cuda.Device().synchronize)
    except ImportError:
        pass
    # Alternating batches: the GPU hosts drift in speed within a run, and every row should see the same host.
    results = [(name, t.us) for name, t in measure_interleaved(fns, number=2000, repeats=15).items()]
    lines = ["# Host time of one tiny asynchronous CUDA add, layer by layer", "", stamp_line(), "",
             "| layer | us per op |", "|---|---:|"] + [f"| {name} | {us:.2f} |" for name, us in results]
    lines += ["", "Medians of 15 batches of 2,000 calls after warm-up, synchronised before each clock read; the rows' "
              "batches run in turn, round after round."]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
