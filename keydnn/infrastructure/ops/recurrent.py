"""Sequence-level recurrent ops: a whole RNN (tanh), LSTM or GRU layer over time-major x (T, N, D) as one
autograd Function each, over the kernel table's ``{rnn,lstm,gru}_sequence_{forward,backward}`` (written once
over primitives in backends/composite_rnn.py, so NumPy, native CPU and CUDA run the same body; a backend may
override them). The input projection of all steps is one GEMM, the recurrence a loop inside the kernel, and
backpropagation through time one backward call: O(T) time and memory, one graph node per sequence.

Weights are the seed's layout: ``W_ih`` (D, G*H), ``W_hh`` (H, G*H), biases (G*H,); gate columns
LSTM i, f, g, o; GRU z, r, n. GRU ``reset_after=False`` is the seed's (and Keras') form
``n = tanh(x W_in + b_in + (r h) W_hn + b_hn)``; ``reset_after=True`` is PyTorch's and cuDNN's
``n = tanh(x W_in + b_in + r (h W_hn + b_hn))``. ``reverse`` walks time from T-1 to 0 (a backward
direction); outputs stay in time order. The LSTM op returns (T+1, N, H): every step's h, then the last c.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.tensor._tensor import Tensor


class RNNSequence(Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, *, reverse):
        out, ctx.saved = ctx.k.rnn_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse)
        return out

    @staticmethod
    def backward(ctx, g):
        return ctx.k.rnn_sequence_backward(ctx.saved, g)


class LSTMSequence(Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *, reverse):
        out, ctx.saved = ctx.k.lstm_sequence_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
        return out

    @staticmethod
    def backward(ctx, g):
        return ctx.k.lstm_sequence_backward(ctx.saved, g)


class GRUSequence(Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, *, reverse, reset_after):
        out, ctx.saved = ctx.k.gru_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse, reset_after)
        return out

    @staticmethod
    def backward(ctx, g):
        return ctx.k.gru_sequence_backward(ctx.saved, g)


# ---- public functions: checks, then the op ------------------------------------------------------------
def _check(op: str, gates: int, x: Any, states: tuple, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> None:
    if not isinstance(x, Tensor) or x.ndim != 3:
        raise ShapeError(op, "expects time-major input x of rank 3 (T, N, D)", *([x] if isinstance(x, Tensor) else []))
    if x.dtype.kind != "f":
        raise DTypeError(op, f"needs float input, got {x.dtype}", x)
    if x.shape[0] == 0:
        raise ShapeError(op, "the sequence is empty (T = 0)", x)
    for name, t in (("W_ih", w_ih), ("W_hh", w_hh)):
        if not isinstance(t, Tensor) or t.ndim != 2:
            raise ShapeError(op, f"{name} must be a 2-d Tensor", x)
    hidden = w_hh.shape[0]
    width = gates * hidden
    if w_hh.shape != (hidden, width):
        raise ShapeError(op, f"W_hh must be (H, {gates}*H), got {w_hh.shape}", w_hh)
    if w_ih.shape != (x.shape[2], width):
        raise ShapeError(op, f"W_ih must be (D={x.shape[2]}, {width}) for input features D and H={hidden}", x, w_ih)
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and (not isinstance(b, Tensor) or b.shape != (width,)):
            raise ShapeError(op, f"{name} must be ({width},)", *([b] if isinstance(b, Tensor) else []))
    for s in states:
        if s is not None and (not isinstance(s, Tensor) or s.shape != (x.shape[1], hidden)):
            raise ShapeError(op, f"a state must be (N={x.shape[1]}, H={hidden})", x,
                             *([s] if isinstance(s, Tensor) else []))
    for t in (w_ih, w_hh, b_ih, b_hh, *states):
        if t is not None and t.dtype != x.dtype:
            raise DTypeError(op, f"dtypes differ ({x.dtype} vs {t.dtype})", x, t)


def rnn_sequence(x: Tensor, h0: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                 b_hh: Tensor | None = None, reverse: bool = False) -> Tensor:
    """Every hidden state (T, N, H) of a tanh RNN over x (T, N, D); h0 None means zeros."""
    _check("rnn_sequence", 1, x, (h0,), w_ih, w_hh, b_ih, b_hh)
    return RNNSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=bool(reverse))


def lstm_sequence(x: Tensor, h0: Tensor | None, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None, reverse: bool = False) -> Tensor:
    """(T+1, N, H): every hidden state of an LSTM over x (T, N, D) in time order, then the final cell state."""
    _check("lstm_sequence", 4, x, (h0, c0), w_ih, w_hh, b_ih, b_hh)
    return LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=bool(reverse))


def gru_sequence(x: Tensor, h0: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                 b_hh: Tensor | None = None, reverse: bool = False, reset_after: bool = False) -> Tensor:
    """Every hidden state (T, N, H) of a GRU over x (T, N, D); ``reset_after`` picks PyTorch's form."""
    _check("gru_sequence", 3, x, (h0,), w_ih, w_hh, b_ih, b_hh)
    return GRUSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=bool(reverse), reset_after=bool(reset_after))
