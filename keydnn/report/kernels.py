"""Which kernels actually ran: a recording copy of a kernel table stands in for the real one while an op runs,
and each kernel it hands out is labelled by the library behind it (NumPy, native, CUDA kernel, cuBLAS, cuDNN
with the plan it chose, ``cudnn-rnn`` for a recurrent sequence on cuDNN's RNN API)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from keydnn.infrastructure import backends

# Transfers are in every trace and say nothing about which library computed the op; allocation and views are
# named only when nothing else ran (sum's backward is a broadcast).
_TRANSFERS = {"from_host", "to_host"}
_QUIET = {"empty", "zeros", "full", "reshape", "broadcast_to", "ascontiguousarray"}
_CUDA_LIBRARY = {"blas": "cuBLAS", "conv": "cuDNN", "batchnorm": "cuDNN"}


def _label_cpu(table: Any, name: str) -> str:
    native = getattr(table, "name", "numpy") == "native" and name in getattr(table, "native_kernels", ())
    return "native" if native else "numpy"


def _label_cuda(name: str) -> str:
    from keydnn.infrastructure.backends import cuda
    return _CUDA_LIBRARY.get(cuda._LIBRARY_KERNELS.get(name, ""), "CUDA kernel")


class Trace:
    """Kernel calls recorded in order, as ``library:kernel`` labels (cuDNN calls carry their plan)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def labels(self) -> str:
        loud = [c for c in self.calls if c.rsplit(":", 1)[-1] not in _QUIET]
        seen = dict.fromkeys(loud or self.calls)
        return "; ".join(seen) if seen else "(no kernel)"

    def reset(self) -> None:
        self.calls.clear()


def _recording(table: Any, trace: Trace, label: Any) -> SimpleNamespace:
    def wrap(name: str, fn: Any) -> Any:
        if name in _TRANSFERS:
            return fn

        def kernel(*args: Any, **kwargs: Any) -> Any:
            trace.calls.append(f"{label(name)}:{name}")
            return fn(*args, **kwargs)
        return kernel

    return SimpleNamespace(**{k: wrap(k, v) if callable(v) else v for k, v in vars(table).items()})


@contextlib.contextmanager
def _cudnn_plans(trace: Trace) -> Iterator[None]:
    """Label cuDNN convolutions with the plan they ran (graph engine or legacy algorithm)."""
    from keydnn.infrastructure.backends.cuda import conv

    original = conv._plan

    def plan(op: str, direction: str, *args: Any, **kwargs: Any) -> Any:
        h, p = original(op, direction, *args, **kwargs)
        trace.calls.append(f"cuDNN plan {direction}: {conv.describe(p)}")
        return h, p

    conv._plan = plan
    try:
        yield
    finally:
        conv._plan = original


@contextlib.contextmanager
def _cudnn_rnn(trace: Trace) -> Iterator[None]:
    """Label a whole-sequence recurrent kernel that ran on cuDNN's RNN API ``cudnn-rnn:<kernel>`` (the table
    entry is labelled before it runs and cannot know whether it will take cuDNN or fall back)."""
    from keydnn.infrastructure.backends.cuda import rnn

    original = rnn._note

    def note(kernel: str, what: str) -> None:
        original(kernel, what)
        if what == rnn.CUDNN:
            label = f"{_label_cuda(kernel)}:{kernel}"
            for i in range(len(trace.calls) - 1, -1, -1):
                if trace.calls[i] == label:
                    trace.calls[i] = f"{rnn.CUDNN}:{kernel}"
                    break

    rnn._note = note
    try:
        yield
    finally:
        rnn._note = original


@contextlib.contextmanager
def traced(device: str) -> Iterator[Trace]:
    """Record every kernel the ops in the block take from ``device``'s table ("cpu" or "cuda:N")."""
    trace = Trace()
    if device == "cpu":
        table = backends.cpu_table()
        previous = backends._Tables.cpu
        backends._Tables.cpu = _recording(table, trace, lambda n: _label_cpu(table, n))
        try:
            yield trace
        finally:
            backends._Tables.cpu = previous
        return
    index = int(device.split(":")[1])
    table = backends.cuda_table(index)
    backends._Tables.cuda[index] = _recording(table, trace, _label_cuda)
    try:
        with _cudnn_plans(trace), _cudnn_rnn(trace):
            yield trace
    finally:
        backends._Tables.cuda[index] = table
