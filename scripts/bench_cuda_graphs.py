"""A whole training step replayed as one CUDA graph, beside the same step run eagerly, in KeyDNN and PyTorch.

Workloads: the MLP step (64-128-128-10, Adam, batch 64) and the LeNet step (SGD, batch 64) of keydnn.bench.
Rows: KeyDNN eager, KeyDNN graph replay (keydnn.cuda.make_graphed_step), PyTorch eager, PyTorch graph replay
(torch.cuda.CUDAGraph, Adam(capturable=True)) as the reference. Each round times a batch of ``--steps``
steps of every row in turn (A B C D A B C D ...) between two CUDA events of the row's own framework, after a
synchronisation of both; a row's time is the median over rounds (p10-p90 beside it), per step.

    python scripts/bench_cuda_graphs.py [--rounds 15] [--steps 200] [--out reports/gpu/cuda_graphs.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keydnn.bench.events import batch_timer  # noqa: E402
from keydnn.bench.harness import publish, stamp_line  # noqa: E402
from keydnn.bench.workloads import (  # noqa: E402
    keydnn_lenet_step,
    keydnn_mlp_step,
    lenet_data,
    mlp_data,
    training_step,
)

Timer = Callable[[Callable[[], Any], int], float]


def _us_per_step(framework: str) -> Timer:
    """keydnn.bench.events.batch_timer in microseconds per step."""
    timer = batch_timer(framework)
    return lambda fn, steps: timer(fn, steps) * 1e3


def _torch_rows(kind: str) -> dict[str, Callable[[], Any]]:
    """PyTorch eager and graph-replayed steps of the same model and data as keydnn.bench's."""
    import torch
    nn = torch.nn

    def build(capturable: bool):
        x_np, y_np = mlp_data() if kind == "mlp" else lenet_data()
        x, y = torch.from_numpy(x_np).cuda(), torch.from_numpy(y_np).cuda()
        if kind == "mlp":
            model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                  nn.Linear(128, 10)).cuda()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=capturable)
        else:
            model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(),
                                  nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)).cuda()
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = nn.CrossEntropyLoss()
        return training_step(model, loss_fn, opt, x, y), model, opt, loss_fn, x, y

    eager = build(False)[0]
    step, model, opt, loss_fn, x, y = build(True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # PyTorch's recipe: warm up on a side stream, then capture
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    kept = (model, opt, x, y, loss)  # PyTorch's graphs replay these tensors' memory: the caller keeps them alive

    def replay(graph=graph, kept=kept) -> None:
        graph.replay()
    return {f"PyTorch {torch.__version__} eager": eager, "PyTorch graph replay": replay}


def _keydnn_rows(kind: str) -> dict[str, Callable[[], Any]]:
    import keydnn.cuda

    make = keydnn_mlp_step if kind == "mlp" else keydnn_lenet_step
    eager = make("cuda:0")
    graphed = keydnn.cuda.make_graphed_step(make("cuda:0"), warmup=3)
    return {"KeyDNN eager": eager, "KeyDNN graph replay": graphed}


def _quantiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(sorted(samples), n=10, method="inclusive")
    return statistics.median(samples), q[0], q[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=200, help="steps per timed batch")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", choices=("keydnn", "torch"), default=None,
                    help="one framework's rows (each in its own process; by default both, interleaved)")
    args = ap.parse_args()

    kd_time = _us_per_step("keydnn")
    try:
        torch_time: Timer | None = _us_per_step("torch") if args.only != "keydnn" else None
    except ImportError:
        torch_time = None
    lines = ["# A whole training step as one CUDA graph: KeyDNN and PyTorch, eager and replayed", "",
             stamp_line(), ""]
    for kind, title in (("mlp", "MLP 64-128-128-10, Adam, batch 64"), ("lenet", "LeNet, SGD, batch 64")):
        rows = {} if args.only == "torch" else {name: (fn, kd_time) for name, fn in _keydnn_rows(kind).items()}
        if torch_time is not None:
            rows.update({name: (fn, torch_time) for name, fn in _torch_rows(kind).items()})
        for fn, timer in rows.values():  # warm-up batch (kernel loads, allocator caches)
            timer(fn, args.steps)
        samples: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, (fn, timer) in rows.items():
                samples[name].append(timer(fn, args.steps))
        stats = {name: _quantiles(s) for name, s in samples.items()}
        torch_eager = next((m for name, (m, _, _) in stats.items() if name.endswith(" eager")
                            and name.startswith("PyTorch")), None)
        lines += [f"## {title}", "", "| implementation | us per step (median) | p10-p90 | x PyTorch eager |",
                  "|---|---:|---:|---:|"]
        for name, (med, p10, p90) in stats.items():
            ratio = f"{med / torch_eager:.2f}" if torch_eager else "-"
            lines.append(f"| {name} | {med:.1f} | {p10:.1f}-{p90:.1f} | {ratio} |")
        lines.append("")
    lines += [f"Per-step times from CUDA events around batches of {args.steps} steps (each framework's own events, "
              f"both synchronised first), {args.rounds} rounds with the rows interleaved; the target of issue #13 "
              "is KeyDNN graph replay <= 0.3x PyTorch eager."]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
