"""The PyTorch side of the report, in its own process so that it loads its own OpenMP and BLAS (in one process
the libgomp loaded first serves both frameworks). Requests and answers are pickled dicts over stdin/stdout:
hello, parity (torch outputs and gradients of registry samples), setup / calibrate / round (timed batches of a
workload, one batch per request so the parent can alternate rounds), quit.

    python -m keydnn.report._torch_worker THREADS
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from typing import Any

import numpy as np


def _sync(device: str) -> Any:
    import torch
    return torch.cuda.synchronize if device.startswith("cuda") else None


def _batch(fn: Any, sync: Any, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    if sync:
        sync()
    return (time.perf_counter() - t0) / number


def parity(name: str, dtype: str) -> list[dict[str, Any]]:
    """Per sample of the op: {"out", "grads"} (gradients of sum(out * w) for each float input) or {"error"}."""
    import torch

    from keydnn.report.samples import float_positions, samples_for, spec_by_name, weight_for

    spec = spec_by_name()[name]
    answers = []
    for k, s in enumerate(samples_for(spec, dtype)):
        try:
            pos = float_positions(s)
            args = [torch.tensor(a.astype(dtype), requires_grad=spec.differentiable) if i in pos
                    else torch.tensor(a) if isinstance(a, np.ndarray) else a for i, a in enumerate(s.args)]
            out = spec.torch_fn(*args, **s.kwargs)
            grads = []
            if spec.differentiable:
                w = torch.tensor(weight_for(spec, dtype, k, tuple(out.shape))).to(out.dtype)
                out.backward(w)
                grads = [args[i].grad.numpy() if args[i].grad is not None else np.zeros(s.args[i].shape)
                         for i in pos]
            answers.append({"out": out.detach().numpy(), "grads": grads})
        except Exception as exc:
            answers.append({"error": f"{type(exc).__name__}: {exc}"})
    return answers


class Worker:
    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        # KeyDNN computes float32 in full FP32 (TF32 is opt-in) and times cuDNN's candidates before choosing a
        # convolution plan; PyTorch does the same with these settings.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        self.torch = torch
        self.runs: dict[str, tuple[Any, Any, int]] = {}

    def hello(self, msg: dict) -> dict:
        from keydnn.report.env import threadpools

        torch = self.torch
        cuda = torch.cuda.is_available()
        devices = [{"index": i, "name": torch.cuda.get_device_name(i),
                    "uuid": f"GPU-{getattr(torch.cuda.get_device_properties(i), 'uuid', '?')}"}
                   for i in range(torch.cuda.device_count())] if cuda else []
        return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cuda": cuda,
                "cuda_version": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
                "devices": devices, "threadpools": threadpools(), "pid": os.getpid(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark}

    def setup(self, msg: dict) -> dict:
        from keydnn.report.workloads import Workload, torch_step

        device = msg["device"]
        if device.startswith("cuda"):
            self.torch.cuda.set_device(int(device.split(":")[1]))
        fn, sync = torch_step(Workload(**msg["workload"]), device), _sync(device)
        for _ in range(msg.get("warmup", 2)):
            fn()
        if sync:
            sync()
        self.runs[msg["key"]] = (fn, sync, 1)
        return {"ok": True}

    def calibrate(self, msg: dict) -> dict:
        fn, sync, _ = self.runs[msg["key"]]
        per_call = _batch(fn, sync, 1)
        number = max(1, min(1 << 16, int(msg["min_time"] / max(per_call, 1e-9)) + 1))
        self.runs[msg["key"]] = (fn, sync, number)
        return {"number": number, "per_call": per_call}

    def round(self, msg: dict) -> dict:
        fn, sync, number = self.runs[msg["key"]]
        return {"seconds": _batch(fn, sync, number), "number": number}

    def drop(self, msg: dict) -> dict:
        self.runs.pop(msg["key"], None)
        return {"ok": True}

    def parity(self, msg: dict) -> dict:
        return {"answers": parity(msg["op"], msg["dtype"])}


def main() -> int:
    answer_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything torch prints goes to stderr, not into the pickle stream
    requests = sys.stdin.buffer

    def send(obj: dict) -> None:
        pickle.dump(obj, answer_stream)
        answer_stream.flush()

    try:
        worker = Worker(int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count() or 1)
    except ImportError as exc:
        send({"error": f"torch not importable: {exc}"})
        return 0
    while True:
        try:
            msg = pickle.load(requests)
        except EOFError:
            return 0
        if msg["cmd"] == "quit":
            send({"ok": True})
            return 0
        try:
            send(getattr(worker, msg["cmd"])(msg))
        except Exception as exc:
            send({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    sys.exit(main())
