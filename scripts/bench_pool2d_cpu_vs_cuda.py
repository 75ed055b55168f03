"""MaxPool2d, AvgPool2d and GlobalAvgPool2d forward, CPU vs CUDA.

    python scripts/bench_pool2d_cpu_vs_cuda.py --dtype float32 --sanity [--N 8 --C 32 --H 64 --W 64 --k 2 --s 2
        --p 0 --warmup 10 --repeats 50 --seed 0 --device 0 --out FILE]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a clone without an install

import numpy as np  # noqa: E402

from keydnn.bench.cpu_vs_cuda import Case, parser, run  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    ap = parser(__doc__.splitlines()[0], warmup=10, repeats=50)
    for flag, default in (("--N", 8), ("--C", 32), ("--H", 64), ("--W", 64), ("--k", 2), ("--s", 2), ("--p", 0)):
        ap.add_argument(flag, type=int, default=default)
    args = ap.parse_args(argv)

    from keydnn import Tensor
    from keydnn.nn import AvgPool2d, GlobalAvgPool2d, MaxPool2d

    x_np = np.random.default_rng(args.seed).standard_normal((args.N, args.C, args.H, args.W)).astype(args.dtype)
    layers = {"MaxPool2d (forward)": lambda: MaxPool2d(args.k, stride=args.s, padding=args.p),
              "AvgPool2d (forward)": lambda: AvgPool2d(args.k, stride=args.s, padding=args.p),
              "GlobalAvgPool2d (forward)": GlobalAvgPool2d}

    def case(name: str, make) -> Case:
        def build(device: str):
            layer, x = make(), Tensor.from_numpy(x_np, device=device)
            return lambda: layer(x)
        return Case(name, build)

    return run([case(name, make) for name, make in layers.items()], args, title="Pool2d forward (CPU vs CUDA)",
               config=[f"input N={args.N}, C={args.C}, H={args.H}, W={args.W}; kernel {args.k}x{args.k}, "
                       f"stride {args.s}, padding {args.p}"])


if __name__ == "__main__":
    main()
