"""Native conv2d kernels: libkeydnn_cpu's im2col/col2im with the GEMMs in NumPy's multithreaded BLAS.

The batch is processed in chunks whose column buffer stays cache-sized, so memory does not grow with N.
Same signatures and semantics as backends/numpy/conv.py; other dtypes fall back to it.
"""

from __future__ import annotations

import numpy as np

from keydnn.infrastructure.backends.native_cpu import _lib
from keydnn.infrastructure.backends.numpy import conv as ref
from keydnn.infrastructure.backends.numpy.conv import (
    Pair,
    check_float_pair,
    check_grad_shape,
    conv2d_output_hw,
)

_CHUNK_BYTES = 4 << 20


def _chunk(n: int, per_image: int, itemsize: int) -> int:
    return max(1, min(n, _CHUNK_BYTES // max(1, per_image * itemsize)))


def _is_pointwise(w_shape: tuple, stride: Pair, padding: Pair) -> bool:
    """A 1x1 kernel at stride 1 without padding: the input already is its own column matrix."""
    return w_shape[2:] == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                   dilation: Pair, groups: int) -> np.ndarray:
    op = "conv2d_forward"
    oh, ow = conv2d_output_hw(op, x.shape, w.shape, stride, padding, dilation, groups)
    check_float_pair(op, x, w)
    if x.dtype not in _lib.SUFFIX:
        return ref.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    k, p = cg * kh * kw, oh * ow
    if b is not None and tuple(b.shape) != (o,):
        return ref.conv2d_forward(x, w, b, stride, padding, dilation, groups)  # raises its ShapeError
    x = np.ascontiguousarray(x)
    wm = np.ascontiguousarray(w).reshape(groups, o // groups, k)
    y = np.empty((n, o, oh, ow), dtype=x.dtype)
    if _is_pointwise(w.shape, stride, padding):
        np.matmul(wm, x.reshape(n, groups, k, p), out=y.reshape(n, groups, o // groups, p))
    else:
        geom = _lib.conv_geom(c, h, wd, (kh, kw), stride, padding, dilation, (oh, ow))
        step = _chunk(n, c * kh * kw * p, x.itemsize)
        cols = np.empty((step, groups, k, p), dtype=x.dtype)
        for i in range(0, n, step):
            m = min(step, n - i)
            _lib.call(op, "keydnn_im2col", x.dtype, x[i:i + m], geom, m, cols[:m])
            np.matmul(wm, cols[:m], out=y[i:i + m].reshape(m, groups, o // groups, p))
    if b is not None:
        y += b.reshape(1, o, 1, 1).astype(y.dtype, copy=False)
    return y


def conv2d_backward_input(gy: np.ndarray, w: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair,
                          dilation: Pair, groups: int) -> np.ndarray:
    op = "conv2d_backward_input"
    oh, ow = conv2d_output_hw(op, x_shape, w.shape, stride, padding, dilation, groups)
    check_float_pair(op, gy, w)
    if gy.dtype not in _lib.SUFFIX:
        return ref.conv2d_backward_input(gy, w, x_shape, stride, padding, dilation, groups)
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    k, p = cg * kh * kw, oh * ow
    check_grad_shape(op, gy, (n, o, oh, ow))
    gy = np.ascontiguousarray(gy).reshape(n, groups, o // groups, p)
    wt = np.ascontiguousarray(w).reshape(groups, o // groups, k).transpose(0, 2, 1)
    gx = np.empty((n, c, h, wd), dtype=gy.dtype)
    if _is_pointwise(w.shape, stride, padding):
        np.matmul(wt, gy, out=gx.reshape(n, groups, k, p))
        return gx
    geom = _lib.conv_geom(c, h, wd, (kh, kw), stride, padding, dilation, (oh, ow))
    step = _chunk(n, c * kh * kw * p, gy.itemsize)
    cols = np.empty((step, groups, k, p), dtype=gy.dtype)
    for i in range(0, n, step):
        m = min(step, n - i)
        np.matmul(wt, gy[i:i + m], out=cols[:m])
        _lib.call(op, "keydnn_col2im", gy.dtype, cols[:m], geom, m, gx[i:i + m])
    return gx


def conv2d_backward_weight(gy: np.ndarray, x: np.ndarray, w_shape: tuple, stride: Pair, padding: Pair,
                           dilation: Pair, groups: int) -> np.ndarray:
    op = "conv2d_backward_weight"
    oh, ow = conv2d_output_hw(op, x.shape, w_shape, stride, padding, dilation, groups)
    check_float_pair(op, gy, x)
    if x.dtype not in _lib.SUFFIX:
        return ref.conv2d_backward_weight(gy, x, w_shape, stride, padding, dilation, groups)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w_shape
    k, p = cg * kh * kw, oh * ow
    check_grad_shape(op, gy, (n, o, oh, ow))
    x = np.ascontiguousarray(x)
    gy = np.ascontiguousarray(gy).reshape(n, groups, o // groups, p)
    gw = np.zeros((groups, o // groups, k), dtype=x.dtype)
    if n == 0:
        return gw.reshape(tuple(w_shape))
    if _is_pointwise(tuple(w_shape), stride, padding):
        gw += np.matmul(gy, x.reshape(n, groups, k, p).transpose(0, 1, 3, 2)).sum(axis=0)
        return gw.reshape(tuple(w_shape))
    geom = _lib.conv_geom(c, h, wd, (kh, kw), stride, padding, dilation, (oh, ow))
    step = _chunk(n, c * kh * kw * p, x.itemsize)
    cols = np.empty((step, groups, k, p), dtype=x.dtype)
    for i in range(0, n, step):
        m = min(step, n - i)
        _lib.call(op, "keydnn_im2col", x.dtype, x[i:i + m], geom, m, cols[:m])
        gw += np.matmul(gy[i:i + m], cols[:m].transpose(0, 1, 3, 2)).sum(axis=0)
    return gw.reshape(tuple(w_shape))
