"""Where the cuDNN LSTM path's per-step time goes at long sequences.

Default: KeyDNN's LSTM layer (16 -> 32, N=32, float32) at T=16 and T=512, forward alone against forward +
backward, FMA math (KeyDNN's default, no TF32) against TF32.

``--variants``: cudnnRNNForward / BackwardData_v8 / BackwardWeights_v8 called directly on the same problem
with each combination of data layout (SEQ_MAJOR_PACKED with padded I/O disabled, KeyDNN's; SEQ_MAJOR_UNPACKED
with padded I/O enabled), algorithm (STANDARD, PERSIST_STATIC, PERSIST_STATIC_SMALL_H) and math type (FMA,
DEFAULT), timed with CUDA events (median of ``--reps`` calls after warm-up): what cuDNN itself costs per step
under each choice, without KeyDNN's weight packing or autograd around it. ``--torch`` prints PyTorch's
cuDNN LSTM on the same shapes (run it in its own process).

    python scripts/probe_cudnn_rnn.py [--variants | --torch] [--hidden 32] [--batch 32] [--input 16]
    (H200 outputs: reports/gpu/rnn_probe_h200.txt, reports/gpu/rnn_variants_h200.txt)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_layer(steps: int, tf32: bool, args: argparse.Namespace, reps: int = 20) -> None:
    from keydnn import Tensor
    from keydnn.infrastructure.backends import cuda
    from keydnn.infrastructure.backends.cuda import blas
    from keydnn.infrastructure.recurrent import LSTM

    blas.set_tf32(tf32)
    layer = LSTM(args.input, args.hidden, return_state=False).to("cuda:0")
    x_np = np.random.default_rng(0).standard_normal((steps, args.batch, args.input)).astype(np.float32)
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
          f"per step fwd+bwd {both / steps * 1e3:.1f} us", flush=True)


def _events_ms(fn, reps: int) -> float:
    from keydnn.infrastructure.backends import cuda
    from keydnn.infrastructure.backends.cuda._cudart import Event

    for _ in range(3):
        fn()
    samples = []
    for _ in range(reps):
        cuda.synchronize(0)
        start, end = Event(), Event()
        start.record()
        fn()
        end.record()
        samples.append(start.elapsed_ms(end))
    return statistics.median(samples)


def run_variant(steps: int, layout: str, algo: int, math: int, args: argparse.Namespace) -> str:
    from keydnn.domain.errors import KeyDNNError
    from keydnn.infrastructure.backends.cuda import _cudart, _cudnn, storage
    from keydnn.infrastructure.backends.cuda import _cudnn_rnn as R
    from keydnn.infrastructure.backends.cuda.creation import from_host_on

    op, dev, n, d, hid = "probe", 0, args.batch, args.input, args.hidden
    code = _cudnn.DATA_FLOAT
    _cudart.set_device(dev)
    h = _cudnn.handle(dev)
    packed = layout == "packed"
    try:
        desc = R.rnn_descriptor(op, h, R.RNN_LSTM, code, math, d, hid, algo=algo,
                                aux_flags=R.RNN_PADDED_IO_DISABLED if packed else R.RNN_PADDED_IO_ENABLED)
        lay = R.RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED if packed else R.RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED
        xd, yd = R.rnn_data(op, code, steps, n, d, lay), R.rnn_data(op, code, steps, n, hid, lay)
        hd = R.tensor_nd(op, code, (1, n, hid))
        wbytes = R.rnn_weight_space_size(op, h, desc)
        work, reserve = R.rnn_temp_space_sizes(op, h, desc, R.FWD_MODE_TRAINING, xd)
    except KeyDNNError as exc:
        return f"refused: {str(exc).splitlines()[0][:120]}"
    rng = np.random.default_rng(0)

    def dev_array(count: int, scale: float = 1.0):
        return from_host_on((rng.standard_normal(count) * scale).astype(np.float32), dev)

    w = dev_array(wbytes // 4, 0.1)
    dw = dev_array(wbytes // 4)
    x, dy = dev_array(steps * n * d), dev_array(steps * n * hid)
    y, dx = dev_array(steps * n * hid), dev_array(steps * n * d)
    hx, cx, cy = dev_array(n * hid), dev_array(n * hid), dev_array(n * hid)
    dhx, dcx = dev_array(n * hid), dev_array(n * hid)
    ws, rs = storage.workspace(max(work, 1), dev), storage.workspace(max(reserve, 1), dev)
    lengths = np.full(n, steps, np.int32)
    seq = storage.workspace(lengths.nbytes, dev)
    _cudart.memcpy(seq.ptr, lengths.ctypes.data, lengths.nbytes, _cudart.MEMCPY_H2D)

    def forward() -> None:
        R.rnn_call(op, "cudnnRNNForward", h, desc, R.FWD_MODE_TRAINING, seq.ptr, xd, x.ptr, yd, y.ptr,
                   hd, hx.ptr, None, hd, cx.ptr, cy.ptr, wbytes, w.ptr, work, ws.ptr, reserve, rs.ptr)

    def backward() -> None:
        R.rnn_call(op, "cudnnRNNBackwardData_v8", h, desc, seq.ptr, yd, y.ptr, dy.ptr, xd, dx.ptr,
                   hd, hx.ptr, None, dhx.ptr, hd, cx.ptr, None, dcx.ptr, wbytes, w.ptr, work, ws.ptr,
                   reserve, rs.ptr)
        R.rnn_call(op, "cudnnRNNBackwardWeights_v8", h, desc, R.WGRAD_MODE_ADD, seq.ptr, xd, x.ptr, hd, hx.ptr,
                   yd, y.ptr, wbytes, dw.ptr, work, ws.ptr, reserve, rs.ptr)

    try:
        fwd = _events_ms(forward, args.reps)
        both = _events_ms(lambda: (forward(), backward()), args.reps)
    except KeyDNNError as exc:
        return f"failed: {str(exc).splitlines()[0][:120]}"
    return (f"forward {fwd:.3f} ms ({fwd / steps * 1e3:.1f} us/step), fwd+bwd {both:.3f} ms "
            f"({both / steps * 1e3:.1f} us/step); workspace {work >> 10} KiB, reserve {reserve >> 10} KiB")


def run_torch(steps: int, args: argparse.Namespace) -> None:
    import torch

    for tf32 in (False, True):
        torch.backends.cudnn.allow_tf32 = tf32
        lstm = torch.nn.LSTM(args.input, args.hidden).cuda()
        x = torch.randn(steps, args.batch, args.input, device="cuda", requires_grad=True)

        def forward() -> None:
            lstm(x)

        def both() -> None:
            out, _ = lstm(x)
            out.sum().backward()

        times = []
        for fn in (forward, both):
            for _ in range(3):
                fn()
            samples = []
            for _ in range(args.reps):
                torch.cuda.synchronize()
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                fn()
                e.record()
                e.synchronize()
                samples.append(s.elapsed_time(e))
            times.append(statistics.median(samples))
        print(f"torch {torch.__version__} cudnn {torch.backends.cudnn.version()} T={steps} allow_tf32={tf32}: "
              f"forward {times[0]:.3f} ms ({times[0] / steps * 1e3:.1f} us/step), fwd+bwd {times[1]:.3f} ms "
              f"({times[1] / steps * 1e3:.1f} us/step)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--variants", action="store_true")
    mode.add_argument("--torch", action="store_true")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input", type=int, default=16)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 512])
    args = ap.parse_args()
    print(f"LSTM({args.input} -> {args.hidden}), N={args.batch}, float32", flush=True)
    if args.torch:
        for steps in args.steps:
            run_torch(steps, args)
        return
    if not args.variants:
        for steps in args.steps:
            for tf32 in (False, True):
                run_layer(steps, tf32, args)
        return
    from keydnn.infrastructure.backends.cuda import _cudnn
    from keydnn.infrastructure.backends.cuda import _cudnn_rnn as R

    algos = {"STANDARD": R.RNN_ALGO_STANDARD, "PERSIST_STATIC": R.RNN_ALGO_PERSIST_STATIC,
             "PERSIST_STATIC_SMALL_H": R.RNN_ALGO_PERSIST_STATIC_SMALL_H}
    maths = {"FMA": _cudnn.FMA_MATH, "DEFAULT": _cudnn.DEFAULT_MATH}
    for steps in args.steps:
        for layout in ("packed", "unpacked"):
            for aname, algo in algos.items():
                for mname, math in maths.items():
                    print(f"T={steps} {layout} {aname} {mname}: {run_variant(steps, layout, algo, math, args)}",
                          flush=True)


if __name__ == "__main__":
    main()
