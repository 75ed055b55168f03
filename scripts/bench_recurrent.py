"""KeyDNN's recurrent layers beside PyTorch's, in one run: a forward + backward pass of RNN, LSTM and GRU over
time-major input, for a short and a longer sequence, on the CPU (and CUDA when available). Batches of the two
frameworks run alternately. Prints a markdown table stamped with the machine.

KeyDNN composes its recurrent layers from Tensor ops in a Python loop (no fused recurrent kernel), and each
step's backward scatters into the whole input's gradient, so the gap to PyTorch's fused layers grows with T.

    python scripts/bench_recurrent.py [--device cpu|cuda:0] [--out reports/cpu/recurrent_bench.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from keydnn.bench import measure_interleaved, paired_ratio
from keydnn.bench.harness import publish, stamp_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()

    import torch

    from keydnn import Tensor
    from keydnn.infrastructure.recurrent import GRU, LSTM, RNN

    dev = args.device
    tdev = "cuda" if dev.startswith("cuda") else "cpu"
    if tdev == "cpu":
        sync_k = sync_t = None
    else:
        from keydnn.infrastructure.backends import cuda

        sync_k, sync_t = (lambda: cuda.synchronize(0)), torch.cuda.synchronize
    n, d, h = 32, 64, 128
    rows = []
    rng = np.random.default_rng(0)
    for steps in (16, 64):
        x_np = rng.standard_normal((steps, n, d)).astype(np.float32)
        for name, ours, theirs in (("RNN", RNN, torch.nn.RNN), ("LSTM", LSTM, torch.nn.LSTM),
                                   ("GRU", GRU, torch.nn.GRU)):
            layer = ours(d, h, return_state=False).to(dev)
            ref = theirs(d, h).to(tdev)
            x = Tensor.from_numpy(x_np, device=dev, requires_grad=True)
            tx = torch.from_numpy(x_np).to(tdev).requires_grad_()

            def k_step(layer=layer, x=x):
                layer(x).sum().backward()

            def t_step(ref=ref, tx=tx):
                ref(tx)[0].sum().backward()

            t = measure_interleaved({"k": (k_step, sync_k), "t": (t_step, sync_t)}, warmup=2,
                                    repeats=args.repeats)
            rows.append((f"{name}, T={steps}", t["k"].ms, t["t"].ms, paired_ratio(t["k"], t["t"])))
    lines = [f"# Recurrent layers, forward + backward, KeyDNN vs PyTorch {torch.__version__} on {dev}", "",
             stamp_line(), "", f"Input (T, N={n}, D={d}), hidden size {h}, float32.", "",
             "| layer | KeyDNN ms | PyTorch ms | KeyDNN / PyTorch |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {k:.2f} | {t:.2f} | {r:.1f}x |" for name, k, t, r in rows]
    lines += ["", "Medians of alternating batches after warm-up (one forward + backward per batch)."]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
