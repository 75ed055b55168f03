"""Where the cuDNN LSTM path's per-step time goes at long sequences: forward alone against forward + backward,
FMA math (KeyDNN's default, no TF32) against TF32. LSTM(16 -> 32), N=32, float32, T=16 and T=512.

    python scripts/probe_cudnn_rnn.py        (output of the H200 run: reports/gpu/rnn_probe_h200.txt)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keydnn import Tensor  # noqa: E402
from keydnn.infrastructure.backends import cuda  # noqa: E402
from keydnn.infrastructure.backends.cuda import blas  # noqa: E402
from keydnn.infrastructure.recurrent import LSTM  # noqa: E402


def run(steps: int, tf32: bool, reps: int = 20) -> None:
    blas.set_tf32(tf32)
    layer = LSTM(16, 32, return_state=False).to("cuda:0")
    x_np = np.random.default_rng(0).standard_normal((steps, 32, 16)).astype(np.float32)
    x = Tensor.from_numpy(x_np, device="cuda:0", requires_grad=True)
    for _ in range(3):
        layer(x).sum().backward()
    cuda.synchronize(0)
    t0 = time.perf_counter()
    for _ in range(reps):
        layer(x)
    cuda.synchronize(0)
    t1 = time.perf_counter()
    for _ in range(reps):
        layer(x).sum().backward()
    cuda.synchronize(0)
    t2 = time.perf_counter()
    fwd, both = (t1 - t0) / reps * 1e3, (t2 - t1) / reps * 1e3
    print(f"T={steps} tf32={tf32}: forward {fwd:.2f} ms, fwd+bwd {both:.2f} ms, "
          f"per step fwd+bwd {both / steps * 1e3:.1f} us")


if __name__ == "__main__":
    for steps in (16, 512):
        for tf32 in (False, True):
            run(steps, tf32)
