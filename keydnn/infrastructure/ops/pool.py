"""Max, average and global-average 2-D pooling (NCHW) as autograd Functions over the pooling kernels.

Max pooling pads with -inf and routes each gradient to the first maximum of its window; average pooling
counts padded cells as zeros and divides by kh*kw. Global average pooling is a mean over H and W.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.backends.numpy.pool import pool2d_output_hw
from keydnn.infrastructure.ops import reduce as rd
from keydnn.infrastructure.ops.conv import pair
from keydnn.infrastructure.tensor._tensor import Tensor


class MaxPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding):
        y, argmax = ctx.k.max_pool2d_forward(x, kernel, stride, padding)
        ctx.saved = (argmax, x.shape)
        return y

    @staticmethod
    def backward(ctx, g):
        argmax, x_shape = ctx.saved
        return (ctx.k.max_pool2d_backward(g, argmax, x_shape),)


class AvgPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding):
        ctx.saved = (x.shape, kernel, stride, padding)
        return ctx.k.avg_pool2d_forward(x, kernel, stride, padding)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.avg_pool2d_backward(g, *ctx.saved),)


def _args(op: str, x: Any, kernel_size: Any, stride: Any, padding: Any) -> dict:
    if not isinstance(x, Tensor):
        raise DTypeError(op, f"expects a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise DTypeError(op, f"needs a float input, got {x.dtype}", x)
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    pool2d_output_hw(op, x.shape, kernel, stride, padding)
    return {"kernel": kernel, "stride": stride, "padding": padding}


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Max over kh x kw windows (stride defaults to the kernel); padding at most half the kernel."""
    return MaxPool2dFn.apply(x, **_args("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over kh x kw windows, padded cells counting as zeros (divisor always kh*kw)."""
    return AvgPool2dFn.apply(x, **_args("avg_pool2d", x, kernel_size, stride, padding))


def global_avg_pool2d(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, 1, 1), the mean over each plane."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ShapeError("global_avg_pool2d", f"expects a 4-D NCHW tensor, got {getattr(x, 'shape', x)!r}")
    if x.dtype.kind != "f":
        raise DTypeError("global_avg_pool2d", f"needs a float input, got {x.dtype}", x)
    return rd.mean(x, axis=(2, 3), keepdims=True)
