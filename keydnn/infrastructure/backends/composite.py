"""Contract kernels written once over another table's primitive kernels: the NumPy and CUDA tables bind them to
themselves (``bind``), a backend with a fused version (the native CPU's) overrides them by name."""

from __future__ import annotations

import functools
from typing import Any

from keydnn.infrastructure.backends import composite_rnn

_ALL = slice(None)


def lstm_gates_forward(k: Any, v: Any, c_prev: Any) -> tuple[Any, Any, Any, Any]:
    n = c_prev.shape[1]
    u = k.tanh(v)
    i_f = k.add(k.multiply(k.getitem(u, (_ALL, slice(0, 2 * n))), 0.5), 0.5)
    o = k.add(k.multiply(k.getitem(u, (_ALL, slice(3 * n, 4 * n))), 0.5), 0.5)
    i, f = k.getitem(i_f, (_ALL, slice(0, n))), k.getitem(i_f, (_ALL, slice(n, 2 * n)))
    c = k.add(k.multiply(f, c_prev), k.multiply(i, k.getitem(u, (_ALL, slice(2 * n, 3 * n)))))
    tc = k.tanh(c)
    return k.multiply(o, tc), c, u, tc


def lstm_gates_backward(k: Any, dh: Any, dc: Any, u: Any, c_prev: Any, tc: Any) -> tuple[Any, Any]:
    n = c_prev.shape[1]
    i_f = k.add(k.multiply(k.getitem(u, (_ALL, slice(0, 2 * n))), 0.5), 0.5)
    o = k.add(k.multiply(k.getitem(u, (_ALL, slice(3 * n, 4 * n))), 0.5), 0.5)
    g_c = k.multiply(k.multiply(dh, o), k.subtract(1.0, k.multiply(tc, tc)))
    if dc is not None:
        g_c = k.add(g_c, dc)
    ug = k.getitem(u, (_ALL, slice(2 * n, 3 * n)))
    i, f = k.getitem(i_f, (_ALL, slice(0, n))), k.getitem(i_f, (_ALL, slice(n, 2 * n)))
    # d/dv of 0.5 tanh(v) + 0.5 is 0.5 (1 - u^2), of tanh(v) 1 - u^2: the g block is doubled, then all halved
    da = k.concatenate([k.multiply(g_c, ug), k.multiply(g_c, c_prev), k.multiply(k.multiply(g_c, i), 2.0),
                        k.multiply(dh, tc)], 1)
    dv = k.multiply(k.multiply(da, k.subtract(1.0, k.multiply(u, u))), 0.5)
    return dv, k.multiply(g_c, f)


def softmax_backward(k: Any, y: Any, g: Any, axis: int) -> Any:
    gy = k.multiply(g, y)  # dx = y * (g - sum(g * y))
    return k.subtract(gy, k.multiply(y, k.sum(gy, axis, True)))


def log_softmax_backward(k: Any, y: Any, g: Any, axis: int) -> Any:
    return k.subtract(g, k.multiply(k.exp(y), k.sum(g, axis, True)))


_SEQUENCE = tuple(f"{cell}_sequence_{way}" for cell in ("rnn", "lstm", "gru") for way in ("forward", "backward"))
COMPOSITE = ("lstm_gates_forward", "lstm_gates_backward", "softmax_backward", "log_softmax_backward") + _SEQUENCE


def bind(table: Any) -> Any:
    """Give ``table`` every composite kernel it lacks, computed with its own primitives."""
    for name in COMPOSITE:
        if not hasattr(table, name):
            fn = getattr(composite_rnn, name) if name in _SEQUENCE else globals()[name]
            setattr(table, name, functools.partial(fn, table))
    return table
