"""Where a training step's host time goes: cProfile over repeated MLP or LeNet steps, top functions by own time.

    python scripts/profile_step.py [--device cuda:0] [--workload lenet|mlp|add] [--steps 200] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

from keydnn.bench.workloads import keydnn_lenet_step, keydnn_mlp_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workload", choices=("lenet", "mlp", "add"), default="lenet")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if args.workload == "add":
        from keydnn import Tensor

        a, b = Tensor.rand((1,), device=args.device), Tensor.rand((1,), device=args.device)

        def step():
            return a + b
    else:
        step = (keydnn_lenet_step if args.workload == "lenet" else keydnn_mlp_step)(args.device)
    for _ in range(20):  # warm-up: plans, caches, the allocator's free lists
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.steps):
        step()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("tottime")
    print(f"{args.workload} on {args.device}: {stats.total_tt / args.steps * 1e6:.1f} us per step under cProfile")
    stats.print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
