"""Conv2d and Conv2dTranspose (NCHW) as autograd Functions over the three conv kernels of the contract.

Conv2dTranspose needs no kernels of its own: its forward is conv2d_backward_input with the output shape
(including output_padding), its input gradient is conv2d_forward, its weight gradient conv2d_backward_weight
with the roles of input and gradient swapped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.backends.numpy.conv import conv2d_output_hw
from keydnn.infrastructure.ops import index as ix
from keydnn.infrastructure.tensor._tensor import Tensor

Pair = tuple[int, int]


def pair(op: str, name: str, value: Any, minimum: int) -> Pair:
    """An int or a pair of ints -> (h, w), each >= minimum; ShapeError otherwise."""
    vals = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (
        not isinstance(vals, (tuple, list))
        or len(vals) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals)
    ):
        raise ShapeError(op, f"{name} must be an int or a pair of ints, got {value!r}")
    if min(vals) < minimum:
        raise ShapeError(op, f"{name} must be >= {minimum}, got {value!r}")
    return int(vals[0]), int(vals[1])


def check_operands(op: str, x: Any, w: Any, b: Any) -> None:
    """Float tensors of one dtype; a 1-D bias of the weight's leading size (the output channels)."""
    for t in (x, w) + ((b,) if b is not None else ()):
        if not isinstance(t, Tensor):
            raise DTypeError(op, f"expects Tensors, got {type(t).__name__}")
    if x.dtype.kind != "f" or w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        operands = [t for t in (x, w, b) if t is not None]
        raise DTypeError(op, "input, weight and bias must share one float dtype", *operands)


class Conv2dFn(Function):
    @staticmethod
    def forward(ctx, x, w, b, *, stride, padding, dilation, groups):
        ctx.saved = (x, w, b is not None)
        ctx.geo = (stride, padding, dilation, groups)
        return ctx.k.conv2d_forward(x, w, b, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, g):
        x, w, has_bias = ctx.saved
        k, need = ctx.k, ctx.needs_grad
        # The bias gradient first: a reduction over (0, 2, 3) may copy g to a transposed layout (CUDA), a
        # temporary of g's size better freed before the input gradient is allocated than alongside it.
        gb = k.sum(g, (0, 2, 3), False) if has_bias and need[2] else None
        gx = k.conv2d_backward_input(g, w, x.shape, *ctx.geo) if need[0] else None
        gw = k.conv2d_backward_weight(g, x, w.shape, *ctx.geo) if need[1] else None
        return gx, gw, gb


def same_padding(op: str, kernel: Pair, stride: Pair, dilation: Pair) -> tuple[Pair, Pair]:
    """'same' as symmetric padding plus the leading output rows/cols to drop.

    PyTorch pads the extra cell of an odd total on the bottom/right, which is the same as padding
    ceil(total/2) on both sides and dropping the first output row/col.
    """
    if stride != (1, 1):
        raise ShapeError(op, f"padding='same' needs stride 1, got {stride}")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
    return (tuple((t + 1) // 2 for t in totals), tuple(t % 2 for t in totals))  # type: ignore[return-value]


def conv2d(
    x: Tensor,
    w: Tensor,
    b: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution of x (N, C, H, W) with w (O, C/groups, kh, kw) plus b (O,); padding may be 'same'."""
    op = "conv2d"
    check_operands(op, x, w, b)
    stride, dilation = pair(op, "stride", stride, 1), pair(op, "dilation", dilation, 1)
    crop = (0, 0)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ShapeError(op, f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if padding == "valid":
            padding = (0, 0)
        else:
            if w.ndim != 4:
                raise ShapeError(op, f"weight must be 4-D, got shape {w.shape}", w)
            padding, crop = same_padding(op, w.shape[2:], stride, dilation)
    padding = pair(op, "padding", padding, 0)
    conv2d_output_hw(op, x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None and b.shape != (w.shape[0],):
        raise ShapeError(op, f"bias must have shape ({w.shape[0]},), got {b.shape}", b)
    y = Conv2dFn.apply(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=int(groups))
    if crop != (0, 0):
        y = ix.getitem(y, (slice(None), slice(None), slice(crop[0], None), slice(crop[1], None)))
    return y


class Conv2dTransposeFn(Function):
    @staticmethod
    def forward(ctx, x, w, b, *, out_shape, stride, padding, dilation, groups):
        ctx.saved = (x, w, b is not None)
        ctx.geo = (stride, padding, dilation, groups)
        y = ctx.k.conv2d_backward_input(x, w, out_shape, stride, padding, dilation, groups)
        if b is not None:
            ctx.k.add(y, ctx.k.reshape(b, (1, -1, 1, 1)), out=y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, has_bias = ctx.saved
        k, need = ctx.k, ctx.needs_grad
        gb = k.sum(g, (0, 2, 3), False) if has_bias and need[2] else None  # first, as in Conv2dFn
        gx = k.conv2d_forward(g, w, None, *ctx.geo) if need[0] else None
        gw = k.conv2d_backward_weight(x, g, w.shape, *ctx.geo) if need[1] else None
        return gx, gw, gb


def conv_transpose2d_output_hw(
    op: str, x_shape: tuple, w_shape: tuple, stride: Pair, padding: Pair, output_padding: Pair, dilation: Pair
) -> Pair:
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ShapeError(op, f"expects a 4-D input and a 4-D weight, got {x_shape} and {w_shape}")
    for o, s, d in zip(output_padding, stride, dilation, strict=True):
        if o >= max(s, d):
            raise ShapeError(
                op,
                f"output_padding {output_padding} must be smaller than stride {stride} or "
                f"dilation {dilation}",
            )
    hw = tuple(
        (i - 1) * s - 2 * p + d * (k - 1) + o + 1
        for i, s, p, d, k, o in zip(
            x_shape[2:], stride, padding, dilation, w_shape[2:], output_padding, strict=True
        )
    )
    if min(hw) < 1:
        raise ShapeError(op, f"output size {hw} is empty for input {x_shape} and weight {w_shape}")
    return hw  # type: ignore[return-value]


def conv_transpose2d(
    x: Tensor,
    w: Tensor,
    b: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """Transposed convolution of x (N, Cin, H, W) with w (Cin, Cout/groups, kh, kw) plus b (Cout,)."""
    op = "conv_transpose2d"
    check_operands(op, x, w, b)
    stride, dilation = pair(op, "stride", stride, 1), pair(op, "dilation", dilation, 1)
    padding, output_padding = pair(op, "padding", padding, 0), pair(op, "output_padding", output_padding, 0)
    hw = conv_transpose2d_output_hw(op, x.shape, w.shape, stride, padding, output_padding, dilation)
    if not isinstance(groups, (int, np.integer)) or groups < 1 or w.shape[0] % groups:
        raise ShapeError(op, f"groups={groups!r} must be a positive int dividing in_channels={w.shape[0]}")
    if x.shape[1] != w.shape[0]:
        raise ShapeError(op, f"input has {x.shape[1]} channels, weight expects {w.shape[0]}", x, w)
    out_shape = (x.shape[0], w.shape[1] * int(groups)) + tuple(hw)
    if conv2d_output_hw(op, out_shape, w.shape, stride, padding, dilation, groups) != tuple(x.shape[2:]):
        raise ShapeError(op, f"padding {padding} leaves no valid output for input {x.shape}", x, w)
    if b is not None and b.shape != (out_shape[1],):
        raise ShapeError(op, f"bias must have shape ({out_shape[1]},), got {b.shape}", b)
    return Conv2dTransposeFn.apply(
        x, w, b, out_shape=out_shape, stride=stride, padding=padding, dilation=dilation, groups=int(groups)
    )
