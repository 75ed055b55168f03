"""Peak GPU memory of one training step after warm-up, KeyDNN against PyTorch, each framework in its own
process on the same GPU. For each workload: bytes allocated before the step (parameters, gradients, optimiser
state: the steady state), the peak during the step, and the step's own peak above the steady state.

    python scripts/bench_cuda_memory.py [--out reports/gpu/memory_h200.md] [--workloads cnn256,ln_mlp,lstm]

Workloads (float32):
    cnn256   Conv2d(3, 32, 3, p1) ReLU Conv2d(32, 64, 3, p1) ReLU MaxPool 2 Flatten Linear(64*16*16, 10),
             batch 256 of 3x32x32, softmax cross-entropy, SGD
    ln_mlp   LayerNorm(512) Linear(512, 2048) ReLU Linear(2048, 512), batch 1024, MSE, Adam
    lstm     LSTM(64 -> 128) over T=128, N=64: forward + backward of the summed output
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keydnn.bench.models import keydnn_lstm_step, torch_lstm_step  # noqa: E402
from keydnn.bench.workloads import training_step  # noqa: E402

MiB = 2**20
WORKLOADS = ("cnn256", "ln_mlp", "lstm")
LSTM = (128, 64, 64, 128)  # T, N, D, H


def _data(name: str):
    rng = np.random.default_rng(0)
    if name == "cnn256":
        return rng.standard_normal((256, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, 256)
    return rng.standard_normal((1024, 512), dtype=np.float32), rng.standard_normal((1024, 512), dtype=np.float32)


def keydnn_step(name: str):
    from keydnn import Tensor
    from keydnn.nn import Conv2d, Flatten, LayerNorm, Linear, MaxPool2d, MSELoss, ReLU, Sequential, SoftmaxCrossEntropy
    from keydnn.optim import SGD, Adam

    dev = "cuda:0"
    if name == "lstm":
        return keydnn_lstm_step(dev, LSTM)
    x_np, y_np = _data(name)
    x, y = Tensor.from_numpy(x_np, device=dev), Tensor.from_numpy(y_np, device=dev)
    if name == "cnn256":
        model = Sequential(Conv2d(3, 32, 3, padding=1), ReLU(), Conv2d(32, 64, 3, padding=1), ReLU(),
                           MaxPool2d(2), Flatten(), Linear(64 * 16 * 16, 10)).to(dev)
        loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01)
    else:
        model = Sequential(LayerNorm(512), Linear(512, 2048), ReLU(), Linear(2048, 512)).to(dev)
        loss_fn, opt = MSELoss(), Adam(model.parameters(), lr=1e-3)
    return training_step(model, loss_fn, opt, x, y)


def torch_step(name: str):
    import torch
    nn = torch.nn
    dev = "cuda:0"
    if name == "lstm":
        return torch_lstm_step(dev, LSTM)
    x_np, y_np = _data(name)
    x, y = torch.from_numpy(x_np).to(dev), torch.from_numpy(y_np).to(dev)
    if name == "cnn256":
        model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 16 * 16, 10)).to(dev)
        loss_fn, opt = nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)
    else:
        model = nn.Sequential(nn.LayerNorm(512), nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 512)).to(dev)
        loss_fn, opt = nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
    return training_step(model, loss_fn, opt, x, y)  # torch's zero_grad sets gradients to None by default


def measure(framework: str, name: str) -> dict:
    if framework == "keydnn":
        from keydnn.infrastructure.backends import cuda
        from keydnn.infrastructure.backends.cuda import allocator
        step = keydnn_step(name)
        for _ in range(3):
            step()
        cuda.synchronize(0)
        before = cuda.memory_stats(0)["allocated_bytes"]
        allocator.reset_peak_memory_stats(0)
        step()
        cuda.synchronize(0)
        s = cuda.memory_stats(0)
        from keydnn.infrastructure.backends.cuda import conv
        plans = [f"{key[0]} x{key[3]} w{key[4]}: {conv.describe(plan)}" for key, plan in conv._plans.items()]
        return {"before": before, "peak": s["peak_allocated_bytes"], "reserved": s["reserved_bytes"],
                "conv_plans": plans}
    import torch
    step = torch_step(name)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return {"before": before, "peak": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.memory_reserved()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(measure(*args.worker)))
        return
    notes = []
    rows = ["| workload | KeyDNN before | KeyDNN peak | torch before | torch peak | peak ratio | step peak ratio "
            "(peak - before) |", "|---|---|---|---|---|---|---|"]
    for name in args.workloads.split(","):
        res = {}
        for fw in ("keydnn", "torch"):
            out = subprocess.run([sys.executable, __file__, "--worker", fw, name], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
            if out.returncode != 0:
                raise SystemExit(f"{fw} {name} failed:\n{out.stderr[-3000:]}")
            res[fw] = json.loads(out.stdout.strip().splitlines()[-1])
        k, t = res["keydnn"], res["torch"]
        step_ratio = (k["peak"] - k["before"]) / max(t["peak"] - t["before"], 1)
        rows.append(f"| {name} | {k['before'] / MiB:.1f} MiB | {k['peak'] / MiB:.1f} MiB | {t['before'] / MiB:.1f} MiB"
                    f" | {t['peak'] / MiB:.1f} MiB | {k['peak'] / t['peak']:.2f}x | {step_ratio:.2f}x |")
        print(rows[-1], flush=True)
        notes += [f"- {name}: {p}" for p in k.get("conv_plans", [])]
    text = ("# Peak GPU memory of one training step (after 3 warm-up steps), KeyDNN / PyTorch\n\n"
            + "\n".join(rows) + "\n")
    if notes:  # a conv's workspace is allocated for the call, so the largest counts towards KeyDNN's peak
        text += ("\nKeyDNN's cuDNN plans (KEYDNN_CUDNN_WORKSPACE_MB="
                 f"{os.environ.get('KEYDNN_CUDNN_WORKSPACE_MB', '1024')}):\n\n" + "\n".join(notes) + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
