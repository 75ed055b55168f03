"""Linear layer backward only (the graph is built once; each iteration runs its backward pass), CPU vs CUDA.

    python scripts/bench_linear_backward_cpu_vs_cuda.py --dtype float32 --sanity [--batch 1024 --in_features
        1024 --out_features 1024 --bias|--no-bias --warmup 10 --repeats 50 --seed 0 --device 0 --out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a clone without an install

import numpy as np  # noqa: E402

from keydnn.bench.cpu_vs_cuda import Case, parser, run  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    ap = parser(__doc__.splitlines()[0], warmup=10, repeats=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--in_features", type=int, default=1024)
    ap.add_argument("--out_features", type=int, default=1024)
    ap.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True, help="(default: on)")
    args = ap.parse_args(argv)

    from keydnn import Tensor
    from keydnn.nn import Linear

    rng = np.random.default_rng(args.seed)
    x_np = rng.standard_normal((args.batch, args.in_features)).astype(args.dtype)
    g_np = rng.standard_normal((args.batch, args.out_features)).astype(args.dtype)

    def build(device: str):
        layer = Linear(args.in_features, args.out_features, bias=args.bias, dtype=args.dtype).to(device)
        x = Tensor.from_numpy(x_np, device=device, requires_grad=True)
        y, g = layer(x), Tensor.from_numpy(g_np, device=device)
        leaves = [x, *layer.parameters()]

        def step():
            for t in leaves:
                t.grad = None
            y.backward(g, retain_graph=True)
            return tuple(t.grad for t in leaves)  # dL/dx, dL/dW (and dL/db)
        return step

    shape = f"{args.batch} x {args.in_features} -> {args.out_features}, bias {'yes' if args.bias else 'no'}"
    return run([Case(f"Linear backward ({shape})", build)], args, title="Linear layer backward (CPU vs CUDA)",
               config=[f"batch {args.batch}, in_features {args.in_features}, out_features {args.out_features}, "
                       f"bias {'on' if args.bias else 'off'}; timed: backward of one Linear (input, weight and "
                       "bias gradients)"])


if __name__ == "__main__":
    main()
