"""NumPy reference kernels for 2-D convolution (NCHW): im2col through stride tricks, GEMM through matmul.

The shape checks live here too (``conv2d_output_hw``) so every backend validates the same way, before any
native call.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from keydnn.domain.errors import DTypeError, ShapeError

Pair = tuple[int, int]


def _check_pair(op: str, name: str, value: object, minimum: int) -> Pair:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        raise ShapeError(op, f"{name} must be a pair of ints, got {value!r}")
    pair = (int(value[0]), int(value[1]))
    if min(pair) < minimum:
        raise ShapeError(op, f"{name} must be >= {minimum}, got {pair}")
    return pair


def conv2d_output_hw(op: str, x_shape: tuple, w_shape: tuple, stride: Pair, padding: Pair,
                     dilation: Pair, groups: int) -> Pair:
    """Validate a conv2d configuration and return (OH, OW); raises ShapeError naming ``op`` otherwise."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4:
        raise ShapeError(op, f"input must be 4-D NCHW, got shape {x_shape}")
    if len(w_shape) != 4:
        raise ShapeError(op, f"weight must be 4-D (C_out, C_in/groups, kH, kW), got shape {w_shape}")
    if min(x_shape) < 0 or min(x_shape[1:]) < 1 or min(w_shape) < 1:
        raise ShapeError(op, f"empty channel/spatial dimensions: input {x_shape}, weight {w_shape}")
    sh, sw = _check_pair(op, "stride", stride, 1)
    ph, pw = _check_pair(op, "padding", padding, 0)
    dh, dw = _check_pair(op, "dilation", dilation, 1)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ShapeError(op, f"groups must be a positive int, got {groups!r}")
    _, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    if c % groups or o % groups:
        raise ShapeError(op, f"groups={groups} must divide in_channels={c} and out_channels={o}")
    if cg * groups != c:
        raise ShapeError(op, f"weight {w_shape} expects {cg * groups} input channels "
                             f"(groups={groups}), input {x_shape} has {c}")
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if ekh > h + 2 * ph or ekw > w + 2 * pw:
        raise ShapeError(op, f"kernel {(kh, kw)} with dilation {(dh, dw)} is larger than the padded "
                             f"input {(h + 2 * ph, w + 2 * pw)}")
    return (h + 2 * ph - ekh) // sh + 1, (w + 2 * pw - ekw) // sw + 1


def check_float_pair(op: str, a: np.ndarray, b: np.ndarray) -> None:
    """Both operands one floating dtype: the convolution and pooling kernels compute in it."""
    if a.dtype != b.dtype or a.dtype.kind != "f":
        raise DTypeError(op, f"operands must share one floating dtype, got {a.dtype} and {b.dtype}", a, b)


def check_grad_shape(op: str, gy: np.ndarray, expected: tuple) -> None:
    if tuple(gy.shape) != tuple(expected):
        raise ShapeError(op, f"gradient has shape {tuple(gy.shape)}, expected {tuple(expected)}", gy)


def _pad(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int,
            out_hw: Pair) -> np.ndarray:
    """(N, C, H, W) -> columns (N, groups, C/groups * kh * kw, OH * OW), a fresh contiguous array."""
    xp = _pad(x, padding)
    n, c = xp.shape[:2]
    (kh, kw), (oh, ow) = kernel, out_hw
    s_n, s_c, s_h, s_w = xp.strides
    windows = as_strided(
        xp, (n, c, kh, kw, oh, ow),
        (s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1]),
        writeable=False)
    return windows.reshape(n, groups, (c // groups) * kh * kw, oh * ow)


def _col2im(cols: np.ndarray, x_shape: tuple, kernel: Pair, stride: Pair, padding: Pair,
            dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Adjoint of _im2col: scatter-add columns (N, C, kh, kw, OH, OW) back into (N, C, H, W).

    One strided slice-add per kernel offset: kh*kw vectorised adds, never a loop over pixels.
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    gxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            gxp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += \
                cols[:, :, i, j]
    return gxp[:, :, ph:ph + h, pw:pw + w].copy() if (ph or pw) else gxp


# The column matrices of one call are built for a slice of the batch at a time, at most this many bytes:
# a whole batch's columns are kh*kw times the input (9x for 3x3), the largest temporary of a training step.
# Samples are independent in every product, and the weight gradient's batch sum runs in the same order,
# so the chunking changes no result.
COLUMN_BYTES = 32 * 2**20


def _batch_chunks(n: int, per_sample_bytes: int) -> list[slice]:
    step = max(1, COLUMN_BYTES // max(per_sample_bytes, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)] or [slice(0, 0)]


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                   dilation: Pair, groups: int) -> np.ndarray:
    """y[n, o] = sum over the o's group of w[o] * window(x[n]) (+ b[o])."""
    op = "conv2d_forward"
    oh, ow = conv2d_output_hw(op, x.shape, w.shape, stride, padding, dilation, groups)
    check_float_pair(op, x, w)
    o, cg, kh, kw = w.shape
    if b is not None and tuple(b.shape) != (o,):
        raise ShapeError(op, f"bias must have shape ({o},), got {tuple(b.shape)}", b)
    n = x.shape[0]
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    y = np.empty((n, groups, o // groups, oh * ow), dtype=np.result_type(w, x))
    for sl in _batch_chunks(n, x.dtype.itemsize * x.shape[1] * kh * kw * oh * ow):
        cols = _im2col(x[sl], (kh, kw), stride, padding, dilation, groups, (oh, ow))
        np.matmul(wm, cols, out=y[sl])
        del cols
    y = y.reshape(n, o, oh, ow)
    if b is not None:
        y += b.reshape(1, o, 1, 1)
    return y


def conv2d_backward_input(gy: np.ndarray, w: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair,
                          dilation: Pair, groups: int) -> np.ndarray:
    """Gradient w.r.t. the input of shape ``x_shape`` (also Conv2dTranspose's forward)."""
    op = "conv2d_backward_input"
    oh, ow = conv2d_output_hw(op, x_shape, w.shape, stride, padding, dilation, groups)
    check_float_pair(op, gy, w)
    n, c = x_shape[:2]
    o, cg, kh, kw = w.shape
    check_grad_shape(op, gy, (n, o, oh, ow))
    wm = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
    g = gy.reshape(n, groups, o // groups, oh * ow)
    gx = np.empty(tuple(x_shape), dtype=np.result_type(wm, g))
    for sl in _batch_chunks(n, gx.dtype.itemsize * c * kh * kw * oh * ow):
        cols = np.matmul(wm, g[sl])
        m = cols.shape[0]
        gx[sl] = _col2im(cols.reshape(m, c, kh, kw, oh, ow), (m,) + tuple(x_shape[1:]), (kh, kw), stride,
                         padding, dilation, (oh, ow))
        del cols
    return gx


def conv2d_backward_weight(gy: np.ndarray, x: np.ndarray, w_shape: tuple, stride: Pair, padding: Pair,
                           dilation: Pair, groups: int) -> np.ndarray:
    """Gradient w.r.t. the weight of shape ``w_shape``: sum over the batch of gy @ columns^T."""
    op = "conv2d_backward_weight"
    oh, ow = conv2d_output_hw(op, x.shape, w_shape, stride, padding, dilation, groups)
    check_float_pair(op, gy, x)
    n = x.shape[0]
    o, _, kh, kw = w_shape
    check_grad_shape(op, gy, (n, o, oh, ow))
    g = gy.reshape(n, groups, o // groups, oh * ow)
    gw = None
    for sl in _batch_chunks(n, x.dtype.itemsize * x.shape[1] * kh * kw * oh * ow):
        cols = _im2col(x[sl], (kh, kw), stride, padding, dilation, groups, (oh, ow))
        per_sample = np.matmul(g[sl], cols.transpose(0, 1, 3, 2))
        del cols
        # The batch sum sample by sample, in order: what .sum(axis=0) over the whole batch computes.
        if gw is None:
            gw = per_sample.sum(axis=0)
        else:
            for p in per_sample:
                gw += p
    return gw.reshape(tuple(w_shape))
