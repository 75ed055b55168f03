"""Native fused LSTM gate kernels (libkeydnn_cpu), same signatures as backends/composite.py's."""

from __future__ import annotations

import numpy as np

from keydnn.infrastructure.backends import composite
from keydnn.infrastructure.backends.native_cpu import _lib


def _dense(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


def lstm_gates_forward(v: np.ndarray, c_prev: np.ndarray) -> tuple[np.ndarray, ...]:
    if v.dtype not in _lib.SUFFIX:
        from keydnn.infrastructure.backends import numpy_table
        return composite.lstm_gates_forward(numpy_table(), v, c_prev)
    v, c_prev = _dense(v), _dense(c_prev)
    n, h = c_prev.shape
    out_h, out_c, tc = (np.empty_like(c_prev) for _ in range(3))
    u = np.empty_like(v)
    _lib.call("lstm_gates_forward", "keydnn_lstm_gates_forward", v.dtype, v, c_prev, n, h, out_h, out_c, u, tc)
    return out_h, out_c, u, tc


def lstm_gates_backward(dh: np.ndarray, dc: np.ndarray | None, u: np.ndarray, c_prev: np.ndarray,
                        tc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if u.dtype not in _lib.SUFFIX:
        from keydnn.infrastructure.backends import numpy_table
        return composite.lstm_gates_backward(numpy_table(), dh, dc, u, c_prev, tc)
    dh, u, c_prev, tc = _dense(dh), _dense(u), _dense(c_prev), _dense(tc)
    dc = None if dc is None else _dense(dc)
    n, h = c_prev.shape
    dv, dc_prev = np.empty_like(u), np.empty_like(c_prev)
    _lib.call("lstm_gates_backward", "keydnn_lstm_gates_backward", u.dtype, dh, dc, u, c_prev, tc, n, h, dv,
              dc_prev)
    return dv, dc_prev
