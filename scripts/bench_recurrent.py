"""KeyDNN's recurrent layers beside PyTorch's: forward + backward of RNN, LSTM and GRU (both forms) at the
issue's shapes, and a sweep of T from 16 to 512 that shows whether the time per step stays flat.

Each framework runs in its own worker process (KeyDNN's never imports torch, PyTorch's never imports KeyDNN),
so each runs at its standalone speed; the parent asks them for timed batches in alternating rounds
(K T K T ...), so a host whose speed drifts slows both alike, and ratios are medians of per-round ratios.
On CUDA a third worker runs KeyDNN with KEYDNN_CUDNN_RNN=0 and KEYDNN_FUSED_GRU=0 (the loop of KeyDNN kernels
and cuBLAS that the cuDNN RNN path and the seed GRU's fused sequence replace), so both KeyDNN paths stand beside
PyTorch; "kernel that ran" is what KeyDNN's default worker reports (cudnn-rnn; keydnn-fused for GRU-seed,
gru_seed.cu; keydnn where it falls back). GRU-seed, which PyTorch lacks, is timed against PyTorch's GRU.

    python scripts/bench_recurrent.py [--device cpu|cuda:0] [--threads N] [--clock wall|process] [--out FILE]
                                      [--no-fallback]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

MAIN_SHAPES = ((32, 32, 16, 32), (128, 64, 64, 128))  # (T, N, D, H)
SWEEP_T = (16, 32, 64, 128, 256, 512)
SWEEP_SHAPES = ((32, 16, 32), (64, 256, 64))  # (N, D, H); the second is the wide input
KINDS = ("RNN", "LSTM", "GRU", "GRU-seed")  # GRU = reset_after=True (PyTorch's form); GRU-seed = reset_after=False


_CELL = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru", "GRU-seed": "gru"}


def _keydnn_kernel(kind, device):
    """Which implementation the last forward and backward of this kind took ("-" on the CPU)."""
    if device == "cpu":
        return "-"
    from keydnn.infrastructure.backends.cuda import rnn

    ran = {rnn.last_kernel.get(f"{_CELL[kind]}_sequence_{way}", "?") for way in ("forward", "backward")}
    return "/".join(sorted(ran))


def _keydnn_case(kind, steps, batch, features, hidden, device):
    import numpy as np

    from keydnn import Tensor
    from keydnn.infrastructure.recurrent import GRU, LSTM, RNN

    cls, kw = {"RNN": (RNN, {}), "LSTM": (LSTM, {}), "GRU": (GRU, {"reset_after": True}),
               "GRU-seed": (GRU, {"reset_after": False})}[kind]
    layer = cls(features, hidden, return_state=False, **kw).to(device)
    x_np = np.random.default_rng(0).standard_normal((steps, batch, features)).astype(np.float32)
    x = Tensor.from_numpy(x_np, device=device, requires_grad=True)

    def step():
        layer(x).sum().backward()
    if device == "cpu":
        return step, None
    from keydnn.infrastructure.backends import cuda
    return step, lambda: cuda.synchronize(0)


def _torch_case(kind, steps, batch, features, hidden, device):
    import torch

    if kind == "GRU-seed":  # PyTorch has no reset-before GRU: its GRU (the same gates and GEMMs) is the yardstick
        kind = "GRU"
    dev = "cuda" if device.startswith("cuda") else "cpu"
    layer = getattr(torch.nn, kind)(features, hidden).to(dev)
    x = torch.randn(steps, batch, features, device=dev, requires_grad=True)

    def step():
        layer(x)[0].sum().backward()
    return step, (torch.cuda.synchronize if dev == "cuda" else None)


def _worker(framework, device, threads, clock_name, conn):
    clock = time.process_time if clock_name == "process" else time.perf_counter
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
    else:  # read at each call by backends/cuda/rnn.py
        os.environ["KEYDNN_CUDNN_RNN"] = "0" if framework == "keydnn-fallback" else "1"
        os.environ["KEYDNN_FUSED_GRU"] = "0" if framework == "keydnn-fallback" else "1"
    make = _torch_case if framework == "torch" else _keydnn_case
    step = sync = None
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "case":
            step, sync = make(*msg[1], device)
            if step is not None:
                for _ in range(2):
                    step()
                if sync:
                    sync()
            kernel = _keydnn_kernel(msg[1][0], device) if step is not None and framework != "torch" else "-"
            conn.send((step is not None, kernel))
        elif msg[0] == "batch":
            t0 = clock()
            for _ in range(msg[1]):
                step()
            if sync:
                sync()
            conn.send((clock() - t0) / msg[1])


class Pair:
    """The worker processes (KeyDNN, PyTorch and, on CUDA, KeyDNN with KEYDNN_CUDNN_RNN=0), asked for timed
    batches in alternating rounds."""

    def __init__(self, device: str, threads: int, clock: str, fallback: bool) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs = {}, []
        self.kernels: dict[str, str] = {}
        for fw in ("keydnn", "torch") + (("keydnn-fallback",) if fallback else ()):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(fw, device, threads, clock, child), daemon=True)
            p.start()
            self.conns[fw], self.procs = parent, self.procs + [p]

    def run(self, case: tuple, repeats: int) -> dict:
        active = []
        for fw, c in self.conns.items():
            c.send(("case", case))
            ok, self.kernels[fw] = c.recv()
            if ok:
                active.append(fw)
        samples = {fw: [] for fw in active}
        for _ in range(repeats):
            for fw in active:
                self.conns[fw].send(("batch", 1))
                samples[fw].append(self.conns[fw].recv())
        return samples

    def close(self) -> None:
        for c in self.conns.values():
            c.send(("stop",))
        for p in self.procs:
            p.join(timeout=10)


def _ratio(k: list, t: list) -> tuple[float, float, float]:
    r = sorted(a / b for a, b in zip(k, t))
    q = statistics.quantiles(r, n=10) if len(r) >= 2 else r * 9
    return statistics.median(r), q[0], q[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="BLAS/OpenMP threads of each worker (PyTorch: torch.set_num_threads)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--clock", choices=("wall", "process"), default="wall",
                    help="wall: perf_counter (with device sync); process: each worker's CPU time, which a busy "
                         "shared host does not inflate (CPU only, and meaningful with --threads 1)")
    ap.add_argument("--sweep-kinds", default="LSTM,GRU", help="kinds in the T sweep, comma-separated")
    ap.add_argument("--no-fallback", action="store_true",
                    help="on CUDA, leave out the KEYDNN_CUDNN_RNN=0 worker (KeyDNN's own loop)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # read by the workers' NumPy/OpenMP at import
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import torch

    from keydnn.bench.harness import publish, stamp_line

    if args.clock == "process" and (args.device != "cpu" or args.threads != 1):
        ap.error("--clock process needs --device cpu and --threads 1 (CPU time of one thread)")
    fallback = args.device != "cpu" and not args.no_fallback
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    pair = Pair(args.device, args.threads, args.clock, fallback)

    def cells(s: dict, key: str, scale: float, fmt: str) -> tuple[str, str]:
        """(median time, ratio to PyTorch with p10-p90) of one worker's samples, '-' where absent."""
        if key not in s:
            return "-", "-"
        value = format(statistics.median(s[key]) * scale, fmt)
        if "torch" not in s:
            return value, "-"
        r, lo, hi = _ratio(s[key], s["torch"])
        return value, f"{r:.2f}x [{lo:.2f}-{hi:.2f}]"

    fb_head = " KeyDNN fallback {u} | fallback / PyTorch |" if fallback else ""
    fb_rule = "---:|---:|" if fallback else ""
    try:
        lines = [f"# Recurrent layers, forward + backward, KeyDNN vs PyTorch {torch.__version__} on {args.device}",
                 "", stamp_line(), "",
                 f"float32; each framework in its own process with {args.threads} thread(s), {args.clock} clock; "
                 f"{args.repeats} "
                 "alternating rounds after 2 warm-up calls; ratio = median of per-round KeyDNN/PyTorch "
                 "(p10-p90 in brackets). GRU is reset_after=True (PyTorch's form); GRU-seed is the seed's "
                 "reset_after=False form, which PyTorch lacks: its row compares it with PyTorch's GRU."
                 + (" KeyDNN runs its default path (cuDNN's RNN API where it applies; the kernel that ran says "
                    "which); KeyDNN fallback is the same layer with KEYDNN_CUDNN_RNN=0 (KeyDNN kernels and "
                    "cuBLAS per step). PyTorch's float32 runs with its defaults (TF32 allowed in cuDNN; "
                    "KeyDNN's cuDNN path uses FMA math, no TF32)." if fallback else ""), "",
                 "| layer | T | N | D | H | kernel that ran | KeyDNN ms | PyTorch ms | KeyDNN / PyTorch |"
                 + fb_head.format(u="ms"),
                 "|---|---:|---:|---:|---:|---|---:|---:|---:|" + fb_rule]
        for shape in MAIN_SHAPES:
            for kind in KINDS:
                s = pair.run((kind, *shape), args.repeats)
                k_ms, k_rat = cells(s, "keydnn", 1e3, ".2f")
                t_ms = cells(s, "torch", 1e3, ".2f")[0]
                row = (f"| {kind} | {' | '.join(map(str, shape))} | {pair.kernels['keydnn']} | {k_ms} | {t_ms} | "
                       f"{k_rat} |")
                if fallback:
                    row += " {} | {} |".format(*cells(s, "keydnn-fallback", 1e3, ".2f"))
                lines.append(row)
                print(lines[-1], flush=True)
        lines += ["", "## Time per step against T (forward + backward, microseconds per step)", "",
                  "| layer | N | D | H | T | kernel that ran | KeyDNN us/step | PyTorch us/step | KeyDNN / PyTorch |"
                  + fb_head.format(u="us/step"),
                  "|---|---:|---:|---:|---:|---|---:|---:|---:|" + fb_rule]
        flat = []
        for kind in args.sweep_kinds.split(","):
            for batch, features, hidden in SWEEP_SHAPES:
                per_step = {}
                for steps in SWEEP_T:
                    s = pair.run((kind, steps, batch, features, hidden), max(3, args.repeats // 2))
                    per_step[steps] = {fw: statistics.median(v) / steps for fw, v in s.items()}
                    k_us, k_rat = cells(s, "keydnn", 1e6 / steps, ".1f")
                    row = (f"| {kind} | {batch} | {features} | {hidden} | {steps} | {pair.kernels['keydnn']} | "
                           f"{k_us} | {cells(s, 'torch', 1e6 / steps, '.1f')[0]} | {k_rat} |")
                    if fallback:
                        row += " {} | {} |".format(*cells(s, "keydnn-fallback", 1e6 / steps, ".1f"))
                    lines.append(row)
                    print(lines[-1], flush=True)
                lo, hi = per_step[SWEEP_T[0]], per_step[SWEEP_T[-1]]

                def growth(fw: str) -> str:
                    return f"{hi[fw] / lo[fw]:.2f}" if fw in lo and fw in hi else "-"
                flat.append(f"| {kind} | {batch} | {features} | {hidden} | {growth('keydnn')} | {growth('torch')} |"
                            + (f" {growth('keydnn-fallback')} |" if fallback else ""))
        lines += ["", f"Per-step cost at T={SWEEP_T[-1]} over T={SWEEP_T[0]} (1.0 = flat):", "",
                  "| layer | N | D | H | KeyDNN | PyTorch |" + (" KeyDNN fallback |" if fallback else ""),
                  "|---|---:|---:|---:|---:|---:|" + ("---:|" if fallback else "")] + flat
        load = f"{load0[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end" if load0 else "unknown"
        load += f" on {os.cpu_count()} cores"
        lines += ["", f"Host load average (1 min): {load}."]
        if args.clock == "process":
            lines += ["The process clock counts each worker's own CPU time, so other processes on a shared host do "
                      "not inflate it (wall-clock rounds there swing by several times); cache and memory-bandwidth "
                      "contention from them still can."]
        publish("\n".join(lines), args.out)
    finally:
        pair.close()


if __name__ == "__main__":
    main()
