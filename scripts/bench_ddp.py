"""Data-parallel scaling of a ResNet-style training step: KeyDNN's DistributedDataParallel over NCCL beside
PyTorch's DDP, each rank on its own GPU with a fixed per-GPU batch (weak scaling).

    python scripts/bench_ddp.py --nproc 1,2 --out reports/gpu/ddp_h200.md

Scaling efficiency at N GPUs = step time on 1 GPU / step time on N GPUs (1.0 is perfect). The script
launches itself per framework and rank count through ``keydnn.distributed.run``; rank 0 reports the median
step time over ``--repeats`` after ``--warmup`` steps, synchronised each step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH, SIZE, WIDTH = 64, 32, 64


def keydnn_step(rank: int):
    import keydnn.distributed as dist
    from keydnn import Tensor
    from keydnn.infrastructure.backends import cuda
    from keydnn.nn import BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, Module, ReLU, SoftmaxCrossEntropy
    from keydnn.optim import SGD

    dev = f"cuda:{rank}"

    class Block(Module):
        def __init__(self):
            super().__init__()
            self.stem, self.bn0 = Conv2d(3, WIDTH, 3, padding=1), BatchNorm2d(WIDTH)
            self.c1, self.b1 = Conv2d(WIDTH, WIDTH, 3, padding=1), BatchNorm2d(WIDTH)
            self.c2, self.b2 = Conv2d(WIDTH, WIDTH, 3, padding=1), BatchNorm2d(WIDTH)
            self.relu, self.pool, self.fc = ReLU(), GlobalAvgPool2d(), Linear(WIDTH, 10)

        def forward(self, x):
            h = self.relu(self.bn0(self.stem(x)))
            r = self.b2(self.c2(self.relu(self.b1(self.c1(h)))))
            return self.fc(self.pool(self.relu(h + r)))

    dist.init_process_group("nccl")
    model = dist.DistributedDataParallel(Block().to(dev))
    opt, loss_fn = SGD(model.parameters(), lr=0.01, momentum=0.9), SoftmaxCrossEntropy()
    rng = np.random.default_rng(rank)
    x = Tensor.from_numpy(rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32), device=dev)
    y = Tensor.from_numpy(rng.integers(0, 10, BATCH), device=dev)

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        cuda.synchronize()
    return step, dist.barrier


def torch_step(rank: int):
    import torch
    import torch.distributed as tdist
    nn = torch.nn

    torch.cuda.set_device(rank)
    tdist.init_process_group("nccl")

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.bn0 = nn.Conv2d(3, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH)
            self.c1, self.b1 = nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH)
            self.c2, self.b2 = nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH)
            self.fc = nn.Linear(WIDTH, 10)

        def forward(self, x):
            h = torch.relu(self.bn0(self.stem(x)))
            r = self.b2(self.c2(torch.relu(self.b1(self.c1(h)))))
            return self.fc(torch.relu(h + r).mean((2, 3)))

    model = nn.parallel.DistributedDataParallel(Block().cuda(), device_ids=[rank])
    opt, loss_fn = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=g).cuda()
    y = torch.randint(0, 10, (BATCH,), generator=g).cuda()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        torch.cuda.synchronize()
    return step, tdist.barrier


def worker(framework: str, out: str, warmup: int, repeats: int) -> None:
    rank = int(os.environ["RANK"])
    step, barrier = (keydnn_step if framework == "keydnn" else torch_step)(rank)
    for _ in range(warmup):
        step()
    barrier()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        Path(out).write_text(json.dumps({"median": float(np.median(times)), "p10": float(np.percentile(times, 10)),
                                         "p90": float(np.percentile(times, 90))}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", default="1,2", help="comma-separated rank counts (one GPU each)")
    ap.add_argument("--frameworks", default="keydnn,torch")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.result, a.warmup, a.repeats)
        return 0
    from keydnn.infrastructure.backends import cuda
    gpus = cuda.device_count() if cuda.is_available() else 0
    rows, base = [], {}
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for n in (int(s) for s in a.nproc.split(",")):
        if n > gpus:
            rows.append(f"| {n} | - | - | skipped: {gpus} GPU(s) visible |")
            continue
        cells = []
        for fw in a.frameworks.split(","):
            with tempfile.NamedTemporaryFile(suffix=".json") as res:
                cmd = [sys.executable, "-m", "keydnn.distributed.run", "--nproc", str(n), "--backend", "nccl",
                       __file__, "--worker", fw, "--result", res.name, "--warmup", str(a.warmup),
                       "--repeats", str(a.repeats)]
                if subprocess.run(cmd, env=env).returncode != 0:
                    cells.append("failed")
                    continue
                t = json.loads(Path(res.name).read_text())
            base.setdefault(fw, t["median"])
            cells.append(f"{t['median'] * 1e3:.3f} ms (p10 {t['p10'] * 1e3:.3f}, p90 {t['p90'] * 1e3:.3f}), "
                         f"efficiency {base[fw] / t['median']:.2f}")
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    head = (f"ResNet-style block step, batch {BATCH} per GPU, {SIZE}x{SIZE}x3, width {WIDTH}, SGD momentum; "
            f"{gpus} GPU(s): {cuda._cudart.device_name(0) if gpus else 'none'}\n\n| GPUs | "
            + " | ".join(a.frameworks.split(",")) + " |\n|---|" + "---|" * len(a.frameworks.split(",")) + "\n")
    text = head + "\n".join(rows) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
