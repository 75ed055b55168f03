"""The whole-sequence recurrent kernels (``{rnn,lstm,gru}_sequence_{forward,backward}`` of the contract),
written once over another table's primitives and bound by the NumPy and CUDA tables (backends/composite.py).

Forward: the input projection of every step is one GEMM ``x (T*N, D) @ W_ih``; the recurrence is a loop (one
``h @ W_hh`` GEMM and the gate kernels per step). Backward through time: a reverse loop that produces every
step's pre-activation gradient, then one GEMM each for ``dx``, ``dW_ih`` and ``dW_hh`` over all steps. Time
and memory are O(T). ``saved`` is whatever the backward needs; callers treat it as opaque.

Sigmoid gates are evaluated as ``0.5 tanh(v) + 0.5`` with ``v = z / 2``: the 1/2 is folded into the weights'
columns and the projected input once per call (the column scale ``m``), so a step's gates are one tanh over
the (N, G*H) block (the LSTM's are the kernels lstm_gates_forward/backward, which native CPU fuses).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ALL = slice(None)
_T2 = (1, 0)


def _project(k: Any, x: Any, w: Any, bias: Any, scale: Any) -> Any:
    """(x (T*N, D) @ w + bias) * scale as (T, N, G): every step's input part in one GEMM."""
    steps, batch, features = x.shape
    y = k.matmul(k.reshape(x, (steps * batch, features)), w)
    if bias is not None:
        y = k.add(y, bias)
    if scale is not None:
        y = k.multiply(y, scale)
    return k.reshape(y, (steps, batch, w.shape[1]))


def _project_backward(k: Any, x: Any, w: Any, dgx: Any) -> tuple[Any, Any, Any]:
    """dx, dW_ih, db of ``_project`` (without its scale) from dgx (T, N, G): three whole-sequence kernels."""
    steps, batch, features = x.shape
    d2 = k.reshape(dgx, (steps * batch, w.shape[1]))
    dx = k.reshape(k.matmul(d2, k.transpose(w, _T2)), x.shape)
    dw = k.matmul(k.transpose(k.reshape(x, (steps * batch, features)), _T2), d2)
    return dx, dw, k.sum(d2, (0,), False)


def _weight_grad(k: Any, inputs: Any, d: Any) -> Any:
    """sum_t inputs[t]^T d[t] for inputs (T, N, A), d (T, N, B): one GEMM."""
    steps, batch, a = inputs.shape
    return k.matmul(k.transpose(k.reshape(inputs, (steps * batch, a)), _T2),
                    k.reshape(d, (steps * batch, d.shape[2])))


def _previous(k: Any, h0: Any, hs: Any, reverse: bool) -> Any:
    """The state each step read, (T, N, H) in time order: h0 then hs[:-1] (or hs[1:] then h0 in reverse)."""
    steps = hs.shape[0]
    first = k.reshape(h0, (1,) + tuple(h0.shape))
    if steps == 1:
        return first
    if reverse:
        return k.concatenate([k.getitem(hs, (slice(1, steps),)), first], 0)
    return k.concatenate([first, k.getitem(hs, (slice(0, steps - 1),))], 0)


def _gate_scale(k: Any, hidden: int, halves: tuple[bool, ...], dtype: Any) -> Any:
    """The column scale m: 0.5 on sigmoid gates' columns, 1 on tanh gates' columns (shape (G*H,))."""
    return k.from_host(np.repeat(np.array([0.5 if h else 1.0 for h in halves], dtype), hidden))


def _order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _bias_sum(k: Any, b_ih: Any, b_hh: Any) -> Any:
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else k.add(b_ih, b_hh)


def _zeros_like_state(k: Any, x: Any, hidden: int) -> Any:
    return k.zeros((x.shape[1], hidden), x.dtype)


# ---- RNN (tanh): h_t = tanh(x_t W_ih + b_ih + h_{t-1} W_hh + b_hh); out (T, N, H) ---------------
def rnn_sequence_forward(k: Any, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                         reverse: bool) -> tuple[Any, Any]:
    hidden = w_hh.shape[0]
    h0 = _zeros_like_state(k, x, hidden) if h0 is None else h0
    gx = _project(k, x, w_ih, _bias_sum(k, b_ih, b_hh), None)
    hs: list = [None] * x.shape[0]
    h = h0
    for t in _order(x.shape[0], reverse):
        h = k.tanh(k.add(k.getitem(gx, (t,)), k.matmul(h, w_hh)))
        hs[t] = h
    out = k.stack(hs, 0)
    saved = (x, h0, w_ih, w_hh, out, reverse, b_ih is not None, b_hh is not None)
    return out, saved


def rnn_sequence_backward(k: Any, saved: Any, g: Any) -> tuple:
    x, h0, w_ih, w_hh, out, reverse, has_bih, has_bhh = saved
    w_hh_t = k.transpose(w_hh, _T2)
    da: list = [None] * x.shape[0]
    dh = None
    for t in _order(x.shape[0], not reverse):
        gt = k.getitem(g, (t,))
        dh = gt if dh is None else k.add(dh, gt)
        h = k.getitem(out, (t,))
        d = k.multiply(dh, k.subtract(1.0, k.multiply(h, h)))
        da[t] = d
        dh = k.matmul(d, w_hh_t)
    dz = k.stack(da, 0)
    dx, dw_ih, db = _project_backward(k, x, w_ih, dz)
    dw_hh = _weight_grad(k, _previous(k, h0, out, reverse), dz)
    return dx, dh, dw_ih, dw_hh, db if has_bih else None, db if has_bhh else None


# ---- LSTM (gates i, f, g, o); out (T+1, N, H): every h in time order, then the last c ----------
def lstm_sequence_forward(k: Any, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                          reverse: bool) -> tuple[Any, Any]:
    n = w_hh.shape[0]
    h0 = _zeros_like_state(k, x, n) if h0 is None else h0
    c0 = _zeros_like_state(k, x, n) if c0 is None else c0
    m = _gate_scale(k, n, (True, True, False, True), x.dtype)
    w = k.multiply(w_hh, m)
    gx = _project(k, x, w_ih, _bias_sum(k, b_ih, b_hh), m)
    steps = x.shape[0]
    hs: list = [None] * steps
    us: list = [None] * steps
    cs: list = [None] * steps
    tcs: list = [None] * steps
    h, c = h0, c0
    for t in _order(steps, reverse):
        h, c, us[t], tcs[t] = k.lstm_gates_forward(k.add(k.getitem(gx, (t,)), k.matmul(h, w)), c)
        hs[t], cs[t] = h, c
    out = k.stack(hs + [c], 0)
    saved = (x, h0, c0, w_ih, w, m, out, us, cs, tcs, reverse, b_ih is not None, b_hh is not None)
    return out, saved


def lstm_sequence_backward(k: Any, saved: Any, g: Any) -> tuple:
    x, h0, c0, w_ih, w, m, out, us, cs, tcs, reverse, has_bih, has_bhh = saved
    steps = x.shape[0]
    w_t = k.transpose(w, _T2)
    dzs: list = [None] * steps
    dh = None
    dc = k.getitem(g, (steps,))
    for t in _order(steps, not reverse):
        prev = t + 1 if reverse else t - 1
        c_prev = c0 if prev < 0 or prev >= steps else cs[prev]
        gt = k.getitem(g, (t,))
        dh = gt if dh is None else k.add(dh, gt)
        dz, dc = k.lstm_gates_backward(dh, dc, us[t], c_prev, tcs[t])  # d/d(scaled pre-activation)
        dzs[t] = dz
        dh = k.matmul(dz, w_t)
    dz_all = k.stack(dzs, 0)
    dx, dw_ih, db = _project_backward(k, x, w_ih, k.multiply(dz_all, m))
    dw_hh = k.multiply(_weight_grad(k, _previous(k, h0, k.getitem(out, (slice(0, steps),)), reverse),
                                    dz_all), m)
    return dx, dh, dc, dw_ih, dw_hh, db if has_bih else None, db if has_bhh else None


# ---- GRU (gates z, r, n; h' = (1 - z) n + z h); out (T, N, H) ---------------------------------
def gru_sequence_forward(k: Any, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, reverse: bool,
                         reset_after: bool) -> tuple[Any, Any]:
    n = w_hh.shape[0]
    h0 = _zeros_like_state(k, x, n) if h0 is None else h0
    m = _gate_scale(k, n, (True, True, False), x.dtype)
    if reset_after:  # b_hn stays inside r * (h W_hn + b_hn); b_hz, b_hr fold into the input part
        b_in = b_ih
        if b_hh is not None:
            b_zr = k.concatenate([k.getitem(b_hh, (slice(0, 2 * n),)), k.zeros((n,), x.dtype)], 0)
            b_in = _bias_sum(k, b_ih, b_zr)
        b_hn = None if b_hh is None else k.getitem(b_hh, (slice(2 * n, 3 * n),))
        w = k.multiply(w_hh, m)
    else:
        b_in = _bias_sum(k, b_ih, b_hh)
        w = k.ascontiguousarray(k.multiply(k.getitem(w_hh, (_ALL, slice(0, 2 * n))), 0.5))
        w_n = k.ascontiguousarray(k.getitem(w_hh, (_ALL, slice(2 * n, 3 * n))))
    gx = _project(k, x, w_ih, b_in, m)
    steps = x.shape[0]
    hs: list = [None] * steps
    zrs: list = [None] * steps
    ns: list = [None] * steps
    extra: list = [None] * steps  # r h (reset before) or h W_hn + b_hn (reset after)
    h = h0
    for t in _order(steps, reverse):
        gxt = k.getitem(gx, (t,))
        gh = k.matmul(h, w)
        zr = k.add(k.multiply(k.tanh(k.add(k.getitem(gxt, (_ALL, slice(0, 2 * n))),
                                           k.getitem(gh, (_ALL, slice(0, 2 * n))))), 0.5), 0.5)
        z, r = k.getitem(zr, (_ALL, slice(0, n))), k.getitem(zr, (_ALL, slice(n, 2 * n)))
        gxn = k.getitem(gxt, (_ALL, slice(2 * n, 3 * n)))
        if reset_after:
            e = k.getitem(gh, (_ALL, slice(2 * n, 3 * n)))
            e = e if b_hn is None else k.add(e, b_hn)
            nn = k.tanh(k.add(gxn, k.multiply(r, e)))
        else:
            e = k.multiply(r, h)
            nn = k.tanh(k.add(gxn, k.matmul(e, w_n)))
        h = k.add(nn, k.multiply(z, k.subtract(h, nn)))
        hs[t], zrs[t], ns[t], extra[t] = h, zr, nn, e
    out = k.stack(hs, 0)
    saved = (x, h0, w_ih, w, None if reset_after else w_n, m, out, zrs, ns, extra, reverse, reset_after,
                 b_ih is not None, b_hh is not None)
    return out, saved


def gru_sequence_backward(k: Any, saved: Any, g: Any) -> tuple:
    x, h0, w_ih, w, w_n, m, out, zrs, ns, extra, reverse, reset_after, has_bih, has_bhh = saved
    n = h0.shape[1]
    steps = x.shape[0]
    w_t = k.transpose(w, _T2)
    w_n_t = None if reset_after else k.transpose(w_n, _T2)
    dgxs: list = [None] * steps
    dghs: list = [None] * steps
    dh = None
    for t in _order(steps, not reverse):
        prev = t + 1 if reverse else t - 1
        h_prev = h0 if prev < 0 or prev >= steps else k.getitem(out, (prev,))
        zr, nn, e = zrs[t], ns[t], extra[t]
        z, r = k.getitem(zr, (_ALL, slice(0, n))), k.getitem(zr, (_ALL, slice(n, 2 * n)))
        gt = k.getitem(g, (t,))
        dh = gt if dh is None else k.add(dh, gt)
        dz = k.multiply(dh, k.subtract(h_prev, nn))
        dan = k.multiply(k.multiply(dh, k.subtract(1.0, z)), k.subtract(1.0, k.multiply(nn, nn)))
        dh_prev = k.multiply(dh, z)
        if reset_after:
            dr = k.multiply(dan, e)
        else:
            drh = k.matmul(dan, w_n_t)
            dr = k.multiply(drh, h_prev)
            dh_prev = k.add(dh_prev, k.multiply(drh, r))
        # d/d(z/2, r/2) of sigmoid(2 v) is 2 s (1 - s)
        dzr = k.multiply(k.concatenate([dz, dr], 1), k.multiply(zr, k.subtract(2.0, k.multiply(zr, 2.0))))
        if reset_after:
            dgh = k.concatenate([dzr, k.multiply(dan, r)], 1)
            dghs[t] = dgh
            dh = k.add(dh_prev, k.matmul(dgh, w_t))
        else:
            dh = k.add(dh_prev, k.matmul(dzr, w_t))
        dgxs[t] = k.concatenate([dzr, dan], 1)
    dgx_raw = k.stack(dgxs, 0)
    if not reset_after:
        dx, dw_ih, db_ih, dw_hh = gru_seed_weight_grads(k, x, h0, w_ih, m, out, dgx_raw, k.stack(extra, 0), reverse)
        return dx, dh, dw_ih, dw_hh, db_ih if has_bih else None, db_ih if has_bhh else None
    dx, dw_ih, db_ih = _project_backward(k, x, w_ih, k.multiply(dgx_raw, m))
    prev_states = _previous(k, h0, out, reverse)
    dgh_all = k.stack(dghs, 0)
    dw_hh = k.multiply(_weight_grad(k, prev_states, dgh_all), m)
    db_hh = k.multiply(k.sum(k.reshape(dgh_all, (steps * x.shape[1], 3 * n)), (0,), False), m)
    return dx, dh, dw_ih, dw_hh, db_ih if has_bih else None, db_hh if has_bhh else None


def gru_seed_weight_grads(k: Any, x: Any, h0: Any, w_ih: Any, m: Any, out: Any, dgx_raw: Any, extra_all: Any,
                          reverse: bool) -> tuple[Any, Any, Any, Any]:
    """dx, dW_ih, db (b_ih's and b_hh's: both sit in the input part) and dW_hh of the seed's GRU from
    dgx_raw (T, N, 3H), the gradients of every step's (z/2, r/2, candidate) pre-activations, and extra_all
    (T, N, H), every step's r * h_prev (also used by the fused CUDA path, backends/cuda/rnn.py)."""
    n = h0.shape[1]
    dx, dw_ih, db_ih = _project_backward(k, x, w_ih, k.multiply(dgx_raw, m))
    prev_states = _previous(k, h0, out, reverse)
    dzr_all = k.getitem(dgx_raw, (_ALL, _ALL, slice(0, 2 * n)))
    dan_all = k.getitem(dgx_raw, (_ALL, _ALL, slice(2 * n, 3 * n)))
    dw_hh = k.concatenate([k.multiply(_weight_grad(k, prev_states, k.ascontiguousarray(dzr_all)), 0.5),
                           _weight_grad(k, extra_all, k.ascontiguousarray(dan_all))], 1)
    return dx, dw_ih, db_ih, dw_hh
