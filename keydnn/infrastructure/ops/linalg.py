"""Matrix products: batched ``matmul`` (NumPy semantics) and the fused ``linear`` (x @ W.T + b)."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import broadcast_shape, require_float, unbroadcast
from keydnn.infrastructure.ops.shape import reshape
from keydnn.infrastructure.tensor._tensor import Tensor


def _swap_last(k: Any, x: Any) -> Any:
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return k.transpose(x, axes)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.saved = (a, b)
        return ctx.k.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        ga = unbroadcast(k, k.matmul(g, _swap_last(k, b)), a.shape) if n[0] else None
        gb = unbroadcast(k, k.matmul(_swap_last(k, a), g), b.shape) if n[1] else None
        return ga, gb


class Linear(Function):
    """y = x @ W.T + b for x of shape (N, in), W (out, in), b (out,) or None."""

    @staticmethod
    def forward(ctx, x, w, b):
        k = ctx.k
        ctx.saved = (x, w)
        y = k.matmul(x, k.transpose(w, (1, 0)))
        return y if b is None else k.add(y, b, out=y)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        gx = k.matmul(g, w) if n[0] else None
        gw = k.matmul(k.transpose(g, (1, 0)), x) if n[1] else None
        gb = k.sum(g, (0,), False) if n[2] else None
        return gx, gw, gb


def _check_pair(op: str, a: Any, b: Any) -> None:
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise DTypeError(op, "operands must be Tensors", a, b)
    require_float(op, a, b)
    if a.dtype != b.dtype:
        raise DTypeError(op, f"dtypes differ ({a.dtype} vs {b.dtype})", a, b)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    _check_pair("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul", "operands must have at least one dimension", a, b)
    if a.ndim == 1 and b.ndim == 1:  # the dot product, as NumPy and PyTorch
        if a.shape != b.shape:
            raise ShapeError("matmul", f"1-D operands must have the same length ({a.shape[0]} vs {b.shape[0]})",
                             a, b)
        return reshape(matmul(reshape(a, (1, -1)), reshape(b, (-1, 1))), ())
    if a.ndim == 1:
        return reshape(matmul(reshape(a, (1, -1)), b), b.shape[:-2] + b.shape[-1:])
    if b.ndim == 1:
        return reshape(matmul(a, reshape(b, (-1, 1))), a.shape[:-1])
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError("matmul", f"inner sizes differ ({a.shape[-1]} vs {b.shape[-2]})", a, b)
    broadcast_shape(a.shape[:-2], b.shape[:-2], "matmul", a, b)
    return MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias over the last axis of x (leading axes are batch axes)."""
    _check_pair("linear", x, weight)
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ShapeError("linear", f"input's last axis must equal in_features={weight.shape[-1]}", x, weight)
    if bias is not None and (bias.shape != (weight.shape[0],) or bias.dtype != x.dtype):
        raise ShapeError("linear", f"bias must have shape ({weight.shape[0]},) and dtype {x.dtype}", bias)
    if x.ndim == 2:
        return Linear.apply(x, weight, bias)
    lead = x.shape[:-1]
    y = Linear.apply(reshape(x, (-1, x.shape[-1])), weight, bias)
    return reshape(y, lead + (weight.shape[0],))
