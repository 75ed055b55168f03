"""Recurrent cells: one time step of a vanilla RNN, an LSTM and a GRU, composed from Tensor ops (so they run
and differentiate on every device). The sequence layers do not step cells: they call the whole-sequence ops
of keydnn.infrastructure.ops.recurrent with the cells' parameters.

Weights follow the seed's layout, transposed relative to Linear: ``W_ih`` is (input_size, G*hidden_size) and
``W_hh`` (hidden_size, G*hidden_size) for G gates, with two biases ``b_ih`` and ``b_hh`` of G*hidden_size;
every parameter starts uniform in (-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keydnn.domain.device._device import CPU, Device
from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.initializers import uniform_
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor, as_dtype


class RecurrentCell(Module):
    """Base of the cells: parameters, config and input checks. ``gates`` is G in the layout above."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        self.input_size, self.hidden_size, self.use_bias = int(input_size), int(hidden_size), bool(bias)
        dev = Device(device) if device is not None else CPU
        dt = as_dtype(dtype, name)
        width = self.gates * self.hidden_size
        bound = 1.0 / math.sqrt(self.hidden_size)

        def param(shape: tuple[int, ...]) -> Parameter:
            p = Parameter(shape, dev, dtype=dt)
            uniform_(p, -bound, bound)
            return p

        self.W_ih = param((self.input_size, width))
        self.W_hh = param((self.hidden_size, width))
        self.b_ih = param((width,)) if bias else None
        self.b_hh = param((width,)) if bias else None

    @property
    def device(self) -> Device:
        return self.W_ih.device

    def get_config(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.use_bias,
                "device": str(self.W_ih.device), "dtype": str(self.W_ih.dtype)}

    def _check(self, x: Tensor, *states: Tensor | None) -> None:
        name = type(self).__name__
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(name, f"expects input (N, {self.input_size})", x)
        for s in states:
            if s is not None and (not isinstance(s, Tensor) or s.shape != (x.shape[0], self.hidden_size)):
                raise ShapeError(name, f"expects states (N, {self.hidden_size}) for N={x.shape[0]}", x, s)

    def zero_state(self, x: Tensor) -> Tensor:
        """Zeros (N, hidden_size) for a step (N, D) or a sequence (T, N, D)."""
        return Tensor.zeros((x.shape[-2], self.hidden_size), device=x.device, dtype=x.dtype)

    def _input_part(self, x: Tensor) -> Tensor:
        return x @ self.W_ih + self.b_ih if self.use_bias else x @ self.W_ih

    def _hidden_part(self, h: Tensor) -> Tensor:
        return h @ self.W_hh + self.b_hh if self.use_bias else h @ self.W_hh


@register_module()
class RNNCell(RecurrentCell):
    """``h' = tanh(x W_ih + b_ih + h W_hh + b_hh)``; ``forward(x, h=None)`` (h defaults to zeros)."""

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(x, h)
        h = self.zero_state(x) if h is None else h
        return (self._input_part(x) + self._hidden_part(h)).tanh()


@register_module()
class LSTMCell(RecurrentCell):
    """Gate columns i, f, g, o: ``c' = f c + i g``, ``h' = o tanh(c')``; ``forward(x, h=None, c=None) ->
    (h', c')`` (the layout of PyTorch's LSTM, transposed)."""

    gates = 4

    def forward(self, x: Tensor, h: Tensor | None = None, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x, h, c)
        h = self.zero_state(x) if h is None else h
        c = self.zero_state(x) if c is None else c
        z = self._input_part(x) + self._hidden_part(h)
        n = self.hidden_size
        i, f = z[:, :n].sigmoid(), z[:, n:2 * n].sigmoid()
        g, o = z[:, 2 * n:3 * n].tanh(), z[:, 3 * n:].sigmoid()
        c = f * c + i * g
        return o * c.tanh(), c


@register_module()
class GRUCell(RecurrentCell):
    """Gate columns z, r, n: ``z, r = sigmoid(x W_i{z,r} + b_i{z,r} + h W_h{z,r} + b_h{z,r})``,
    ``h' = (1 - z) n + z h``. ``reset_after=False`` (the default; the seed's and Keras' form) applies the reset
    gate before the hidden product, ``n = tanh(x W_in + b_in + (r h) W_hn + b_hn)``; ``reset_after=True``
    (PyTorch's and cuDNN's) after it, ``n = tanh(x W_in + b_in + r (h W_hn + b_hn))``. ``forward(x, h=None)``."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, reset_after: bool = False) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.reset_after = bool(reset_after)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(x, h)
        h = self.zero_state(x) if h is None else h
        n = self.hidden_size
        gx = self._input_part(x)
        if self.reset_after:
            gh = self._hidden_part(h)
            zr = (gx[:, :2 * n] + gh[:, :2 * n]).sigmoid()
            z, r = zr[:, :n], zr[:, n:]
            cand = (gx[:, 2 * n:] + r * gh[:, 2 * n:]).tanh()
            return (1.0 - z) * cand + z * h
        gzr = gx[:, :2 * n] + h @ self.W_hh[:, :2 * n]
        if self.use_bias:
            gzr = gzr + self.b_hh[:2 * n]
        z, r = gzr[:, :n].sigmoid(), gzr[:, n:].sigmoid()
        gn = gx[:, 2 * n:] + (r * h) @ self.W_hh[:, 2 * n:]
        if self.use_bias:
            gn = gn + self.b_hh[2 * n:]
        return (1.0 - z) * gn.tanh() + z * h
