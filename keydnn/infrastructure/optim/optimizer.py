"""Optimizer base: holds the parameters and per-parameter state, validates hyper-parameters, and runs each
step as one fused in-place kernel call per (device, dtype) group, so the same code serves every backend."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from keydnn.domain.errors import ArgumentError, GraphCaptureError, SerializationError
from keydnn.infrastructure import capture
from keydnn.infrastructure.autograd import no_grad
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.tensor._tensor import Tensor


class Optimizer:
    """Subclasses name their state buffers (``buffers``), give ``hyper()`` and ``_update(kernels, group)``."""

    buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any) -> None:
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if isinstance(params, Tensor) or not isinstance(params, Iterable):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters (or a Module)")
        self.params: list[Tensor] = []
        seen: set[int] = set()
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: expected Tensors, got {type(p).__name__}")
            if id(p) not in seen:  # a parameter shared between layers is updated once per step
                seen.add(id(p))
                self.params.append(p)
        if not self.params:
            raise ArgumentError(type(self).__name__, "got an empty parameter list (a lazy layer such as Dense "
                                "has parameters only after its first call)")
        # per parameter (by position): {"step": int, <buffer name>: Tensor}
        self.state: list[dict[str, Any]] = [{"step": 0} for _ in self.params]

    @staticmethod
    def _check(name: str, value: float, low: float, high: float = float("inf"), *, low_open: bool = False,
               op: str = "optimizer") -> float:
        value = float(value)
        bad = value <= low if low_open else value < low
        if bad or value >= high or np.isnan(value):
            rng = f"{'(' if low_open else '['}{low}, {high})"
            raise ArgumentError(op, f"{name} must be in {rng}, got {value}")
        return value

    def hyper(self) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, k: Any, params: list, grads: list, states: list[dict[str, Any]], step: int) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, grouped so each group is one kernel call.

        Under CUDA graph capture nothing runs yet: the step counts stay where they are and each replay
        advances them, and the kernels' replay hooks take their step from those counts (see
        backends/cuda/optim.py), so eager steps between replays keep the count right."""
        groups: dict[tuple, list[int]] = {}
        captured = capture.capturing()
        if captured and self.buffers and any(p.grad is not None and self.buffers[0] not in st
                                             for p, st in zip(self.params, self.state, strict=True)):
            # zeroing new buffers inside the graph would zero them again on every replay
            raise GraphCaptureError(f"{type(self).__name__}.step", "optimizer state is created at the first "
                                    "step; run one step eagerly before capturing (make_graphed_step does: warmup=1)")
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            st = self.state[i]
            if self.buffers and self.buffers[0] not in st:
                for name in self.buffers:
                    st[name] = Tensor.zeros_like(p)
            st["step"] += 1
            groups.setdefault((p.device, p.dtype, st["step"]), []).append(i)
        for (device, _, step), idx in groups.items():
            params = [self.params[i] for i in idx]

            def update(device=device, step=step, idx=idx, params=params) -> None:
                self._update(kernels_for(device), [p.data for p in params], [p.grad.data for p in params],
                             [self.state[i] for i in idx], step)
            if captured:  # the kernels' own replay hooks get the steps taken since this capture's step
                capture.on_replay(functools.partial(self._replayed, idx, step, capture.collect(update)))
                for i in idx:
                    self.state[i]["step"] -= 1  # nothing ran: the first replay takes this step
            else:
                update()
            for p in params:
                p._version += 1  # graphs recorded before this in-place update must not reuse the old values

    def _replayed(self, indices: list[int], captured_step: int, hooks: list, _replay: int) -> None:
        """Before a replay of a captured step: advance the step counts (eager steps taken between replays
        count too) and let the kernels' hooks feed the graph this step's values."""
        for i in indices:
            self.state[i]["step"] += 1
        for hook in hooks:
            hook(self.state[indices[0]]["step"] - captured_step)

    # ---- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters and per-parameter state (step counts, buffers as host ndarray copies)."""
        state = []
        for st in self.state:
            entry: dict[str, Any] = {"step": st["step"]}
            for name in self.buffers:
                if name in st:
                    entry[name] = np.array(st[name].to_numpy(), copy=True)
            state.append(entry)
        return {"type": type(self).__name__, "hyper": self.hyper(), "state": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` gave, after checking it all (type, count, shapes) first."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or state_dict.get("type") != name:
            got = state_dict.get("type") if isinstance(state_dict, dict) else type(state_dict).__name__
            raise SerializationError(f"{name}.load_state_dict: state is for {got!r}")
        entries, hyper = state_dict.get("state"), state_dict.get("hyper", {})
        if not isinstance(entries, list) or len(entries) != len(self.params):
            raise SerializationError(f"{name}.load_state_dict: state for {len(entries or [])} parameters, "
                                     f"optimizer has {len(self.params)}")
        if set(hyper) != set(self.hyper()):
            raise SerializationError(f"{name}.load_state_dict: hyper-parameters {sorted(hyper)} != "
                                     f"{sorted(self.hyper())}")
        for i, (p, entry) in enumerate(zip(self.params, entries, strict=True)):
            if not isinstance(entry, dict) or not isinstance(entry.get("step"), (int, np.integer)):
                raise SerializationError(f"{name}.load_state_dict: entry {i} lacks an int 'step'")
            for b in self.buffers:
                if b in entry and tuple(np.shape(entry[b])) != p.shape:
                    raise SerializationError(f"{name}.load_state_dict: {b} of parameter {i} has shape "
                                             f"{np.shape(entry[b])}, parameter has {p.shape}")
        try:
            fresh = type(self)(self.params, **hyper)  # validates the values without touching self
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"{name}.load_state_dict: bad hyper-parameters: {exc}") from None
        self.__dict__.update({k: v for k, v in vars(fresh).items() if k not in ("params", "state")})
        for p, st, entry in zip(self.params, self.state, entries, strict=True):
            st.clear()
            st["step"] = int(entry["step"])
            for b in self.buffers:
                if b in entry:
                    st[b] = Tensor(data=np.asarray(entry[b]), dtype=p.dtype, device=p.device)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper().items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"
