"""Latency of elementwise Tensor ops, Python overhead included, CPU vs CUDA (median and p95).

    python scripts/bench_tensor_ops_cpu_vs_cuda.py --dtype float32 --sanity [--shape 512 512 --ops add sub mul
        div gt neg exp add_scalar mul_scalar --alpha 0.125 --sync_each_iter --cuda_device cuda:0 --warmup 50
        --repeats 200 --seed 0 --out FILE]

Without --sync_each_iter CUDA iterations are not synchronised (as the seed measured them): the median is the
launch latency, and the 'incl. drain' column adds one synchronisation at the end, spread over the repeats.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a clone without an install

import numpy as np  # noqa: E402

from keydnn.bench.cpu_vs_cuda import Case, parser, run  # noqa: E402

OPS = {
    "add": lambda a, b, s: a + b,
    "sub": lambda a, b, s: a - b,
    "mul": lambda a, b, s: a * b,
    "div": lambda a, b, s: a / b,
    "gt": lambda a, b, s: a > b,
    "neg": lambda a, b, s: -a,
    "exp": lambda a, b, s: a.exp(),
    "add_scalar": lambda a, b, s: a + s,
    "mul_scalar": lambda a, b, s: a * s,
}


def main(argv: list[str] | None = None) -> str:
    ap = parser(__doc__.splitlines()[0], warmup=50, repeats=200)
    ap.add_argument("--shape", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS), metavar="OP",
                    help=f"any of {' '.join(OPS)} (default: all)")
    ap.add_argument("--alpha", type=float, default=0.125, help="the scalar of add_scalar and mul_scalar")
    ap.add_argument("--sync_each_iter", action="store_true", help="synchronise CUDA after every iteration")
    ap.add_argument("--cuda_device", default=None, help="cuda:N (the seed's spelling of --device N)")
    args = ap.parse_args(argv)
    if args.cuda_device is not None:
        prefix, _, index = args.cuda_device.partition(":")
        if prefix != "cuda" or not index.isdigit():
            raise SystemExit(f"--cuda_device must look like cuda:0, got {args.cuda_device!r}")
        args.device = int(index)

    from keydnn import Tensor

    rng = np.random.default_rng(args.seed)
    a_np = rng.standard_normal(args.shape).astype(args.dtype)
    b_np = (rng.random(args.shape) + 0.5).astype(args.dtype)  # away from zero, for div

    def case(op: str) -> Case:
        def build(device: str):
            a, b = Tensor.from_numpy(a_np, device=device), Tensor.from_numpy(b_np, device=device)
            fn = OPS[op]
            return lambda: fn(a, b, args.alpha)
        return Case(op, build)

    sync = "after every iteration" if args.sync_each_iter else "not between iterations (--sync_each_iter off)"
    return run([case(op) for op in args.ops], args, title="Tensor elementwise operations (CPU vs CUDA)",
               config=[f"shape {tuple(args.shape)}; scalar {args.alpha}; CUDA synchronised {sync}"],
               sync_each_iter=args.sync_each_iter, show_p95=True)


if __name__ == "__main__":
    main()
