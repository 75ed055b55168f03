"""The GPU gaps issue 13 measured, through each framework's public API (autograd included), KeyDNN beside
PyTorch: an embedding lookup's forward + backward (gather by an index tensor, scatter-add into the table's
gradient), a large softmax forward + backward, BatchNorm2d training forward + backward on large activations,
and a ResNet-style basic block's training step (conv-BN-ReLU-conv-BN, identity shortcut, ReLU; SGD).

Each framework runs in its own worker process (neither imports the other); the parent alternates rounds
(K T K T ...) and a row's ratio is the median of per-round ratios (p10-p90 beside it); a round times a batch of
calls between the framework's own CUDA events after a synchronisation.

    python scripts/bench_cuda_gaps.py [--rounds 9] [--calls 20] [--out reports/gpu/gaps_h200.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keydnn.bench.events import BatchTimer, batch_timer  # noqa: E402

EMB = (50000, 256, 64 * 128)  # table rows, width, lookups (a batch of 64 sequences of 128 tokens)
SOFTMAX = (8192, 8192)
BN = (64, 256, 32, 32)
BLOCK = (32, 64, 56, 56)  # batch, channels, height, width (ResNet-18's first stage)
ROWS = {
    "embedding lookup forward + backward": f"{EMB[2]} ids into {EMB[0]}x{EMB[1]}",
    "softmax forward + backward": "x".join(map(str, SOFTMAX)),
    "BatchNorm2d training forward + backward": "x".join(map(str, BN)),
    "ResNet basic block training step (SGD)": "x".join(map(str, BLOCK)) + ", 3x3 convs",
}


def _data():
    rng = np.random.default_rng(0)
    return {
        "ids": rng.integers(0, EMB[0], EMB[2]),
        "table": (rng.standard_normal(EMB[:2]) * 0.1).astype(np.float32),
        "logits": rng.standard_normal(SOFTMAX).astype(np.float32),
        "bn": rng.standard_normal(BN).astype(np.float32),
        "block": rng.standard_normal(BLOCK).astype(np.float32),
    }


def _keydnn_rows() -> tuple[dict[str, Callable[[], object]], BatchTimer]:
    from keydnn import Tensor
    from keydnn.nn import BatchNorm2d, Conv2d, Module, ReLU
    from keydnn.optim import SGD

    dev, d = "cuda:0", _data()
    table = Tensor.from_numpy(d["table"], device=dev, requires_grad=True)
    ids = Tensor.from_numpy(d["ids"], device=dev)
    logits = Tensor.from_numpy(d["logits"], device=dev, requires_grad=True)
    bn = BatchNorm2d(BN[1]).to(dev)
    xb = Tensor.from_numpy(d["bn"], device=dev, requires_grad=True)

    class Block(Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = Conv2d(c, c, 3, padding=1, bias=False), BatchNorm2d(c)
            self.conv2, self.bn2 = Conv2d(c, c, 3, padding=1, bias=False), BatchNorm2d(c)
            self.relu = ReLU()

        def forward(self, x):
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)

    block = Block(BLOCK[1]).to(dev)
    opt = SGD(block.parameters(), lr=0.01, momentum=0.9)
    xr = Tensor.from_numpy(d["block"], device=dev)

    def embedding():
        table.grad = None
        table[ids].sum().backward()

    def softmax():
        logits.grad = None
        (logits.softmax(-1) * logits).sum().backward()

    def batchnorm():
        xb.grad = None
        bn(xb).sum().backward()

    def step():
        opt.zero_grad()
        block(xr).mean().backward()
        opt.step()

    return dict(zip(ROWS, (embedding, softmax, batchnorm, step), strict=True)), batch_timer("keydnn")


def _torch_rows() -> tuple[dict[str, Callable[[], object]], BatchTimer]:
    import torch
    nn = torch.nn

    torch.backends.cudnn.allow_tf32 = False  # the same float32 arithmetic as KeyDNN's convolutions
    dev, d = "cuda:0", _data()
    table = torch.from_numpy(d["table"]).to(dev).requires_grad_()
    ids = torch.from_numpy(d["ids"]).to(dev)
    logits = torch.from_numpy(d["logits"]).to(dev).requires_grad_()
    bn = nn.BatchNorm2d(BN[1]).to(dev)
    xb = torch.from_numpy(d["bn"]).to(dev).requires_grad_()

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)

    block = Block(BLOCK[1]).to(dev)
    opt = torch.optim.SGD(block.parameters(), lr=0.01, momentum=0.9)
    xr = torch.from_numpy(d["block"]).to(dev)

    def embedding():
        table.grad = None
        table[ids].sum().backward()

    def softmax():
        logits.grad = None
        (logits.softmax(-1) * logits).sum().backward()

    def batchnorm():
        xb.grad = None
        bn(xb).sum().backward()

    def step():
        opt.zero_grad()
        block(xr).mean().backward()
        opt.step()

    return dict(zip(ROWS, (embedding, softmax, batchnorm, step), strict=True)), batch_timer("torch")


def _serve(framework: str, calls: int) -> None:
    """Worker: build the rows, then answer each line "round" on stdin with one JSON line of ms per row."""
    fns, timer = _keydnn_rows() if framework == "keydnn" else _torch_rows()
    for fn in fns.values():
        timer(fn, 3)  # warm-up: plans, allocator caches, optimizer state
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        print(json.dumps({name: timer(fn, calls) for name, fn in fns.items()}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", choices=("keydnn", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _serve(args.worker, args.calls)
        return
    from keydnn.bench.harness import publish, stamp_line

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = {fw: subprocess.Popen([sys.executable, __file__, "--worker", fw, "--calls", str(args.calls)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
               for fw in ("keydnn", "torch")}
    for fw, proc in workers.items():
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {fw} worker failed to start")
    times: dict[str, dict[str, list[float]]] = {fw: {n: [] for n in ROWS} for fw in workers}
    for _ in range(args.rounds):
        for fw, proc in workers.items():  # one framework's batch at a time: the GPU is never shared
            proc.stdin.write("round\n")
            proc.stdin.flush()
            for name, ms in json.loads(proc.stdout.readline()).items():
                times[fw][name].append(ms)
    for proc in workers.values():
        proc.stdin.close()
        proc.wait()
    lines = ["# Issue 13's GPU gaps through the public APIs: KeyDNN beside PyTorch", "", stamp_line(), "",
             "| workload | problem (float32) | KeyDNN ms | PyTorch ms | KeyDNN / PyTorch [p10-p90] |",
             "|---|---|---:|---:|---:|"]
    for name, problem in ROWS.items():
        k, t = times["keydnn"][name], times["torch"][name]
        ratios = sorted(a / b for a, b in zip(k, t, strict=True))
        q = statistics.quantiles(ratios, n=10, method="inclusive")
        lines.append(f"| {name} | {problem} | {statistics.median(k):.3f} | {statistics.median(t):.3f} | "
                     f"{statistics.median(ratios):.2f}x [{q[0]:.2f}-{q[-1]:.2f}] |")
    lines += ["", f"{args.rounds} alternating rounds of {args.calls} calls each (CUDA events; each framework in "
              "its own process, its own allocator and cuDNN/cuBLAS). TF32 is off on both sides (PyTorch's "
              "torch.backends.cudnn.allow_tf32 = False; KeyDNN's default)."]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
