"""The speedup report's workloads, each buildable by id on either side (KeyDNN in the report's process, PyTorch
in the worker): the registry's benchmark inputs, the seed README's benchmark shapes and four model steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from keydnn.infrastructure.registry import OpSpec, Sample, to_inputs
from keydnn.report.samples import seed_for, spec_by_name

DTYPE = "float32"


@dataclass(frozen=True)
class Workload:
    id: str
    kind: str  # "op" or "model"
    name: str  # op name or model name
    phase: str  # "forward" or "train" (forward + backward)
    source: str  # "registry", "seed README" or "model"
    heavy: bool = False  # left out by --quick


def _seed_elementwise(op: str, scalar: float | None = None) -> Callable[[np.random.Generator], Sample]:
    def make(rng: np.random.Generator) -> Sample:
        a = rng.uniform(0.5, 2.0, (512, 512))
        if op in ("neg", "exp"):
            return Sample((a,))
        return Sample((a, scalar if scalar is not None else rng.uniform(0.5, 2.0, (512, 512))))
    return make


# The seed README's benchmark tables: name -> (registry op, phase, sample builder, heavy).
SEED_SHAPES: dict[str, tuple[str, str, Callable[[np.random.Generator], Sample], bool]] = {
    "Linear 1024x1024x1024 fwd+bwd": ("linear", "train", lambda rng: Sample(
        (rng.standard_normal((1024, 1024)), rng.standard_normal((1024, 1024)) * 0.03, rng.standard_normal(1024))),
        False),
    "Conv2d 8x64x112x112 -> 128, 3x3": ("conv2d", "forward", lambda rng: Sample(
        (rng.standard_normal((8, 64, 112, 112)), rng.standard_normal((128, 64, 3, 3)) * 0.05,
         rng.standard_normal(128)), {"padding": 1}), True),
    **{f"{op} 512x512": (op, "forward", _seed_elementwise(op), False)
       for op in ("add", "sub", "mul", "div", "gt", "neg", "exp")},
    "add_scalar 512x512": ("add", "forward", _seed_elementwise("add", 1.5), False),
    "mul_scalar 512x512": ("mul", "forward", _seed_elementwise("mul", 0.5), False),
}
MODELS = ("MLP 64-128-128-10 Adam, batch 64", "LeNet SGD, batch 64", "seed-README CNN SGD, batch 64",
          "LSTM T=16 N=32 64->128 fwd+bwd")


def all_workloads() -> list[Workload]:
    specs = spec_by_name()
    out = [Workload(f"registry:{s.name}", "op", s.name, "forward", "registry") for s in specs.values()
           if s.bench is not None and s.torch_fn is not None]
    out += [Workload(f"seed:{name}", "op", name, phase, "seed README", heavy)
            for name, (_, phase, _, heavy) in SEED_SHAPES.items()]
    out += [Workload(f"model:{m}", "model", m, "train", "model") for m in MODELS]
    return out


def op_case(w: Workload) -> tuple[OpSpec, Sample]:
    specs = spec_by_name()
    if w.source == "registry":
        spec = specs[w.name]
        return spec, spec.bench(np.dtype(DTYPE), np.random.default_rng(seed_for("bench", w.name)))
    op, _, make, _ = SEED_SHAPES[w.name]
    return specs[op], make(np.random.default_rng(seed_for("seed", w.name)))


def cost(w: Workload) -> tuple[float, float] | None:
    """(FLOPs, bytes) from the registry's cost; a training step (forward + backward of a GEMM-like op) counts
    three forward passes. Model steps have none."""
    if w.kind != "op":
        return None
    spec, sample = op_case(w)
    if spec.cost is None:
        return None
    flops, nbytes = spec.cost(sample)
    k = 3.0 if w.phase == "train" else 1.0
    return k * float(flops), k * float(nbytes)


def keydnn_step(w: Workload, device: str) -> Callable[[], Any]:
    """One call of the workload in KeyDNN on ``device`` ("cpu" or "cuda:N"), inputs built once."""
    from keydnn import Tensor
    from keydnn.bench import models, workloads

    if w.kind == "model":
        build = {MODELS[0]: workloads.keydnn_mlp_step, MODELS[1]: workloads.keydnn_lenet_step,
                 MODELS[2]: models.keydnn_seed_cnn_step, MODELS[3]: models.keydnn_lstm_step}[w.name]
        return build(device)
    spec, sample = op_case(w)
    dev = None if device == "cpu" else device
    inputs = to_inputs(sample, DTYPE, dev, requires_grad=w.phase == "train")
    if w.phase == "forward":
        return lambda: spec.fn(*inputs, **sample.kwargs)
    out = spec.fn(*inputs, **sample.kwargs)
    g = Tensor(data=np.ones(out.shape, DTYPE), device=dev)
    leaves = [t for t in inputs if getattr(t, "requires_grad", False)]

    def step():
        for t in leaves:
            t.grad = None
        spec.fn(*inputs, **sample.kwargs).backward(g)
    return step


def torch_step(w: Workload, device: str) -> Callable[[], Any]:
    """The same workload in PyTorch (``device`` "cpu" or "cuda:N")."""
    import torch

    from keydnn.bench import models, workloads

    tdev = "cpu" if device == "cpu" else device
    if w.kind == "model":
        build = {MODELS[0]: workloads.torch_mlp_step, MODELS[1]: workloads.torch_lenet_step,
                 MODELS[2]: models.torch_seed_cnn_step, MODELS[3]: models.torch_lstm_step}[w.name]
        return build(tdev)
    spec, sample = op_case(w)
    fn = spec.torch_fn or getattr(torch, spec.name)  # comparisons have no oracle entry; torch.gt is the same op
    train = w.phase == "train"
    args = [torch.tensor(a.astype(DTYPE) if a.dtype.kind == "f" else a, device=tdev,
                         requires_grad=train and a.dtype.kind == "f")
            if isinstance(a, np.ndarray) else a for a in sample.args]
    if not train:
        return lambda: fn(*args, **sample.kwargs)
    g = torch.ones_like(fn(*args, **sample.kwargs))
    leaves = [t for t in args if isinstance(t, torch.Tensor) and t.requires_grad]

    def step():
        for t in leaves:
            t.grad = None
        fn(*args, **sample.kwargs).backward(g)
    return step
