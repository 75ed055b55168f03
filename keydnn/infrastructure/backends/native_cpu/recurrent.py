"""Native LSTM kernels (libkeydnn_cpu): the fused gates of one step (same signatures as backends/composite.py's)
and the whole sequence (as backends/composite_rnn.py's lstm_sequence_forward / _backward, with the recurrence
in one native call: its per-step GEMMs through NumPy's own OpenBLAS). The input projection before the loop and
the weight gradients after it are composite_rnn's whole-sequence GEMMs, over the native table."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.infrastructure.backends import composite, composite_rnn
from keydnn.infrastructure.backends.native_cpu import _lib

_NATIVE_SAVED = "native-lstm-sequence"


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


def _table() -> Any:
    from keydnn.infrastructure.backends import native_table

    return native_table()


def lstm_sequence_forward(x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                          reverse: bool) -> tuple[Any, Any]:
    k = _table()
    steps, batch = x.shape[0], x.shape[1]
    if x.dtype not in _lib.SUFFIX or steps == 0 or batch == 0 or _lib.gemm_library() is None:
        return composite_rnn.lstm_sequence_forward(k, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
    dtype, hidden = x.dtype, w_hh.shape[0]
    h0 = np.zeros((batch, hidden), dtype) if h0 is None else np.ascontiguousarray(h0, dtype)
    c0 = np.zeros((batch, hidden), dtype) if c0 is None else np.ascontiguousarray(c0, dtype)
    m = composite_rnn._gate_scale(k, hidden, (True, True, False, True), dtype)
    w = np.ascontiguousarray(k.multiply(w_hh, m))
    gx = np.ascontiguousarray(composite_rnn._project(k, x, w_ih, composite_rnn._bias_sum(k, b_ih, b_hh), m))
    out = np.empty((steps + 1, batch, hidden), dtype)
    u = np.empty((steps, batch, 4 * hidden), dtype)
    cs, tcs = np.empty((steps, batch, hidden), dtype), np.empty((steps, batch, hidden), dtype)
    _lib.call("lstm_sequence_forward", "keydnn_lstm_sequence_forward", dtype, gx, h0, c0, w, steps, batch, hidden,
              int(bool(reverse)), out, u, cs, tcs)
    saved = (_NATIVE_SAVED, x, h0, c0, w_ih, w, m, out, u, cs, tcs, reverse, b_ih is not None, b_hh is not None)
    return out, saved


def lstm_sequence_backward(saved: Any, g: Any) -> tuple:
    k = _table()
    if not (type(saved) is tuple and saved and saved[0] is _NATIVE_SAVED):
        return composite_rnn.lstm_sequence_backward(k, saved, g)
    _, x, h0, c0, w_ih, w, m, out, u, cs, tcs, reverse, has_bih, has_bhh = saved
    steps, batch, hidden = cs.shape
    g = np.ascontiguousarray(g, u.dtype)
    dz = np.empty_like(u)
    dh0, dc0, work = np.empty_like(h0), np.empty_like(c0), np.empty_like(h0)
    _lib.call("lstm_sequence_backward", "keydnn_lstm_sequence_backward", u.dtype, g, u, cs, tcs, c0, w, steps,
              batch, hidden, int(bool(reverse)), dz, dh0, dc0, work)
    dx, dw_ih, db = composite_rnn._project_backward(k, x, w_ih, k.multiply(dz, m))
    previous = composite_rnn._previous(k, h0, out[:steps], reverse)
    dw_hh = k.multiply(composite_rnn._weight_grad(k, previous, dz), m)
    return dx, dh0, dc0, dw_ih, dw_hh, db if has_bih else None, db if has_bhh else None
