"""Thread pools on the CPU: does a process pay for two runtimes spinning? Each case runs in a fresh process
(the setting under test is fixed when a runtime loads), and the processes of all cases alternate round by
round, so a busy neighbour slows every case alike.

    python scripts/bench_cpu_threads.py [--rounds 3] [--out reports/cpu/threads.md]

Cases:
- pair: a Conv2d forward, a Linear forward (NumPy's BLAS) and the two alternating, timed interleaved in one
  process, with NumPy's BLAS on libkeydnn_cpu's OpenMP team (KeyDNN's default) and on OpenBLAS's own pool
  (KEYDNN_BLAS_THREADS=openblas, the behaviour before); also under OMP_WAIT_POLICY=ACTIVE.
- norm: the native batch-norm forward alternating with a matmul, same settings.
- lenet: PyTorch's and KeyDNN's LeNet training steps, each alone in its process, and with the other framework
  loaded first in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ONE_POOL, TWO_POOLS = {}, {"KEYDNN_BLAS_THREADS": "openblas"}
ACTIVE = {"OMP_WAIT_POLICY": "ACTIVE"}
CASES = [
    ("pair", "one pool (default)", ONE_POOL),
    ("pair", "two pools (KEYDNN_BLAS_THREADS=openblas)", TWO_POOLS),
    ("pair", "one pool, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("pair", "one pool, OMP_WAIT_POLICY=ACTIVE", ACTIVE),
    ("pair", "two pools, OMP_WAIT_POLICY=ACTIVE", {**TWO_POOLS, **ACTIVE}),
    ("norm", "one pool (default)", ONE_POOL),
    ("norm", "two pools (KEYDNN_BLAS_THREADS=openblas)", TWO_POOLS),
    ("norm", "one pool, OMP_WAIT_POLICY=ACTIVE", ACTIVE),
    ("norm", "two pools, OMP_WAIT_POLICY=ACTIVE", {**TWO_POOLS, **ACTIVE}),
    ("torch_lenet", "PyTorch alone", {"BENCH_FIRST": "none"}),
    ("torch_lenet", "KeyDNN's native library loaded first", {"BENCH_FIRST": "keydnn"}),
    ("keydnn_lenet", "KeyDNN alone", {"BENCH_FIRST": "none"}),
    ("keydnn_lenet", "PyTorch imported first", {"BENCH_FIRST": "torch"}),
]


def _timings(fns: dict, repeats: int, number: int) -> dict:
    from keydnn.bench.harness import measure_interleaved
    out = measure_interleaved({k: (f, None) for k, f in fns.items()}, warmup=10, repeats=repeats, number=number)
    return {k: list(t.samples) for k, t in out.items()}


def child_pair() -> dict:
    import numpy as np

    from keydnn import Tensor
    from keydnn.nn import Conv2d, Linear
    rng = np.random.default_rng(0)
    conv, lin = Conv2d(6, 16, 5), Linear(256, 128)
    xc = Tensor.from_numpy(rng.standard_normal((64, 6, 14, 14)).astype(np.float32))
    xl = Tensor.from_numpy(rng.standard_normal((64, 256)).astype(np.float32))

    def pair():
        conv(xc)
        lin(xl)
    return _timings({"conv": lambda: conv(xc), "linear": lambda: lin(xl), "pair": pair}, 15, 10)


def child_norm() -> dict:
    import numpy as np

    from keydnn.infrastructure.backends.native_cpu import norm
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 28, 28), dtype=np.float32)
    g, b = np.ones(64, np.float32), np.zeros(64, np.float32)
    a, w = rng.standard_normal((64, 256), dtype=np.float32), rng.standard_normal((256, 128), dtype=np.float32)

    def pair():
        norm.batch_norm_forward(x, g, b, 1e-5)
        a @ w
    return _timings({"batch_norm": lambda: norm.batch_norm_forward(x, g, b, 1e-5), "matmul": lambda: a @ w,
                     "pair": pair}, 15, 10)


def child_lenet(framework: str) -> dict:
    first = os.environ.get("BENCH_FIRST", "none")
    if first == "keydnn":
        from keydnn.infrastructure.backends.native_cpu import _lib
        _lib.load()
    if first == "torch" or framework == "torch":
        import torch  # noqa: F401
    from keydnn.bench import workloads
    step = workloads.torch_lenet_step() if framework == "torch" else workloads.keydnn_lenet_step()
    return _timings({"step": step}, 15, 3)


def run_child(kind: str, env: dict) -> dict:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, __file__, "--child", kind], capture_output=True, text=True, env=full)
    if res.returncode != 0:
        raise SystemExit(f"child {kind} {env} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _fmt(seconds: list[float]) -> str:
    med = statistics.median(seconds) * 1e3
    return f"{med:.3f} ms [{min(seconds) * 1e3:.3f}-{max(seconds) * 1e3:.3f}]"


def report(results: dict, rounds: int) -> str:
    from keydnn.bench.harness import stamp_line
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["# CPU thread pools: one process, one pool", "",
             stamp_line(), f"Load average at the end: {load:.2f} (a shared machine: other jobs ran beside this).",
             f"{rounds} rounds; each round runs every case in a fresh process, cases alternating. A cell is the "
             "median over rounds of the in-process median per call, [min-max over rounds].", ""]
    for kind, title in (("pair", "Conv2d(6,16,5) on 64x6x14x14 and Linear(256,128) on 64x256, forward"),
                        ("norm", "native batch_norm forward 32x64x28x28 and a 64x256 @ 256x128 matmul"),
                        ("torch_lenet", "PyTorch LeNet training step (batch 64)"),
                        ("keydnn_lenet", "KeyDNN LeNet training step (batch 64)")):
        rows = [(label, res) for (k, label), res in results.items() if k == kind]
        if not rows:
            continue
        names = list(rows[0][1][0])
        lines += [f"## {title}", "", "| setting | " + " | ".join(names) +
                  (" | pair / sum of parts |" if "pair" in names else " |"),
                  "|---|" + "---:|" * (len(names) + ("pair" in names))]
        for label, per_round in rows:
            med = {n: [statistics.median(r[n]) for r in per_round] for n in names}
            cells = [_fmt(med[n]) for n in names]
            if "pair" in names:
                parts = [n for n in names if n != "pair"]
                ratio = [p / sum(med[n][i] for n in parts) for i, p in enumerate(med["pair"])]
                cells.append(f"{statistics.median(ratio):.2f}x [{min(ratio):.2f}-{max(ratio):.2f}]")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=sorted({k for k, _, _ in CASES}), action="append")
    ap.add_argument("--out", default=None)
    ap.add_argument("--raw", default=None, help="also write every sample as JSON here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fns = {"pair": child_pair, "norm": child_norm, "torch_lenet": lambda: child_lenet("torch"),
               "keydnn_lenet": lambda: child_lenet("keydnn")}
        print(json.dumps(fns[args.child]()))
        return
    cases = [c for c in CASES if not args.only or c[0] in args.only]
    results: dict = {(k, label): [] for k, label, _ in cases}
    for r in range(args.rounds):
        for kind, label, env in cases:
            results[(kind, label)].append(run_child(kind, env))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    from keydnn.bench.harness import publish
    if args.raw:
        Path(args.raw).write_text(json.dumps([[k, label, res] for (k, label), res in results.items()]))
    publish(report(results, args.rounds), args.out)


if __name__ == "__main__":
    main()
