"""Registry entries for the whole-sequence recurrent ops: RNN (tanh), LSTM, GRU in both forms, forwards and in
reverse. References are float64 NumPy loops over time; PyTorch's own fused ops (``torch.rnn_tanh``,
``torch.lstm``, ``torch.gru``) are the oracle for every form it has, with the weights mapped (transposed,
and the GRU's gate blocks reordered from our z, r, n to its r, z, n)."""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.ops import recurrent as rec
from keydnn.infrastructure.registry import ErrorSample, OpSpec, Sample, register

_TOL = {"float32": (2e-4, 2e-5), "float64": (1e-10, 1e-12)}
_BENCH_SHAPE = (32, 32, 16, 32)  # T, N, D, H: the small case


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _steps(x, reverse):
    return range(len(x) - 1, -1, -1) if reverse else range(len(x))


def _rnn_ref(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    h, hs = h0, [None] * len(x)
    for t in _steps(x, reverse):
        h = np.tanh(x[t] @ w_ih + b_ih + h @ w_hh + b_hh)
        hs[t] = h
    return np.stack(hs)


def _lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    n = w_hh.shape[0]
    h, c, hs = h0, c0, [None] * len(x)
    for t in _steps(x, reverse):
        z = x[t] @ w_ih + b_ih + h @ w_hh + b_hh
        i, f, g, o = _sig(z[:, :n]), _sig(z[:, n:2 * n]), np.tanh(z[:, 2 * n:3 * n]), _sig(z[:, 3 * n:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs[t] = h
    return np.concatenate([np.stack(hs), c[None]])


def _gru_ref(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, reset_after=False):
    n = w_hh.shape[0]
    h, hs = h0, [None] * len(x)
    for t in _steps(x, reverse):
        gx, gh = x[t] @ w_ih + b_ih, h @ w_hh + b_hh
        z, r = _sig(gx[:, :n] + gh[:, :n]), _sig(gx[:, n:2 * n] + gh[:, n:2 * n])
        if reset_after:
            cand = np.tanh(gx[:, 2 * n:] + r * gh[:, 2 * n:])
        else:
            cand = np.tanh(gx[:, 2 * n:] + (r * h) @ w_hh[:, 2 * n:] + b_hh[2 * n:])
        h = (1 - z) * cand + z * h
        hs[t] = h
    return np.stack(hs)


def _samples(gates, states):
    def gen(dtype, rng):
        out = []
        for (steps, batch, features, hidden), reverse in (((4, 3, 5, 4), False), ((3, 2, 3, 5), True),
                                                          ((1, 2, 3, 2), False)):
            def u(*shape, s=0.6):
                return np.asarray(rng.uniform(-s, s, shape))
            args = (u(steps, batch, features, s=1.5), *[u(batch, hidden, s=1.0) for _ in range(states)],
                    u(features, gates * hidden), u(hidden, gates * hidden), u(gates * hidden), u(gates * hidden))
            out.append(Sample(args, {"reverse": reverse}, label=f"T{steps}N{batch}D{features}H{hidden}"
                                                               f"{'_reverse' if reverse else ''}"))
        return out
    return gen


def _bench(gates, states):
    def gen(dtype, rng):
        steps, batch, features, hidden = _BENCH_SHAPE
        return Sample((rng.standard_normal((steps, batch, features)),
                       *[np.zeros((batch, hidden)) for _ in range(states)],
                       rng.uniform(-0.2, 0.2, (features, gates * hidden)),
                       rng.uniform(-0.2, 0.2, (hidden, gates * hidden)),
                       np.zeros(gates * hidden), np.zeros(gates * hidden)))
    return gen


def _cost(gates, states):
    def cost(sample):
        x = sample.args[0]
        steps, batch, features = x.shape
        hidden = sample.args[states + 1].shape[0]
        flops = 2.0 * steps * batch * (features + hidden) * gates * hidden + 10.0 * steps * batch * gates * hidden
        moved = 4.0 * (x.size + (features + hidden + 2) * gates * hidden + steps * batch * (gates + 2) * hidden)
        return flops, moved
    return cost


def _errors(fn_args, gates):
    def errors():
        x, w_ih, w_hh, b = np.ones((4, 2, 3)), np.ones((3, gates * 5)), np.ones((5, gates * 5)), np.ones(gates * 5)
        return [
            ErrorSample(Sample(fn_args(np.ones((2, 3)), None, w_ih, w_hh, b)), ShapeError, "rank 3"),
            ErrorSample(Sample(fn_args(np.ones((4, 2, 7)), None, w_ih, w_hh, b)), ShapeError, "W_ih must be"),
            ErrorSample(Sample(fn_args(x, np.ones((3, 5)), w_ih, w_hh, b)), ShapeError, "state must be"),
            ErrorSample(Sample(fn_args(x, None, w_ih, np.ones((5, gates * 5 + 1)), b)), ShapeError,
                        "W_hh must be"),
            ErrorSample(Sample(fn_args(x.astype(np.int64), None, w_ih, w_hh, b)), DTypeError, "float"),
        ]
    return errors


def _torch():
    import torch
    return torch


def _flip(t, reverse):
    return _torch().flip(t, [0]) if reverse else t


def _rnn_torch(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    # cuDNN (torch on CUDA) needs contiguous weights: a transposed view fails with "view size is not compatible"
    params = [w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh]
    out, _ = _torch().rnn_tanh(_flip(x, reverse), h0[None], params, True, 1, 0.0, False, False, False)
    return _flip(out, reverse)


def _lstm_torch(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    params = [w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh]
    out, _, c = _torch().lstm(_flip(x, reverse), (h0[None], c0[None]), params, True, 1, 0.0, False, False, False)
    return _torch().cat([_flip(out, reverse), c])


def _rzn(t):
    """Our gate blocks z, r, n along the first axis as PyTorch's r, z, n."""
    n = t.shape[0] // 3
    return _torch().cat([t[n:2 * n], t[:n], t[2 * n:]])


def _gru_torch(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, reset_after=True):
    assert reset_after, "PyTorch's GRU is the reset_after=True form"
    params = [_rzn(w_ih.t()).contiguous(), _rzn(w_hh.t()).contiguous(), _rzn(b_ih), _rzn(b_hh)]
    out, _ = _torch().gru(_flip(x, reverse), h0[None], params, True, 1, 0.0, False, False, False)
    return _flip(out, reverse)


def _gru_after(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    return rec.gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, reverse, reset_after=True)


def _gru_after_ref(*args, reverse=False):
    return _gru_ref(*args, reverse=reverse, reset_after=True)


def _gru_after_torch(*args, reverse=False):
    return _gru_torch(*args, reverse=reverse, reset_after=True)


def _one_state_args(x, h0, w_ih, w_hh, b):
    return (x, h0, w_ih, w_hh, b, b)


def _two_state_args(x, h0, w_ih, w_hh, b):
    return (x, h0, h0, w_ih, w_hh, b, b)


for _name, _fn, _ref, _torch_fn, _gates, _states in (
        ("rnn_sequence", rec.rnn_sequence, _rnn_ref, _rnn_torch, 1, 1),
        ("lstm_sequence", rec.lstm_sequence, _lstm_ref, _lstm_torch, 4, 2),
        ("gru_sequence", rec.gru_sequence, _gru_ref, None, 3, 1),  # the seed's form: no PyTorch oracle
        ("gru_sequence_reset_after", _gru_after, _gru_after_ref, _gru_after_torch, 3, 1)):
    register(OpSpec(_name, "recurrent", _fn, _ref, _samples(_gates, _states), tol=dict(_TOL), torch_fn=_torch_fn,
                    errors=_errors(_two_state_args if _states == 2 else _one_state_args, _gates),
                    bench=_bench(_gates, _states), cost=_cost(_gates, _states)))
