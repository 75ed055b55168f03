"""Native conv2d kernels (libkeydnn_cpu: tiled im2col + register-blocked GEMM, OpenMP over images).

Same signatures and semantics as backends/numpy/conv.py; dtypes other than float32/float64 fall back to it.
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


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                   dilation: Pair, groups: int) -> np.ndarray:
    op = "conv2d_forward"
    oh, ow = conv2d_output_hw(op, x.shape, w.shape, stride, padding, dilation, groups)
    check_float_pair(op, x, w)
    o = w.shape[0]
    if x.dtype not in _lib.SUFFIX or (b is not None and (tuple(b.shape) != (o,) or b.dtype != x.dtype)):
        return ref.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    b = None if b is None else np.ascontiguousarray(b)
    y = np.empty((x.shape[0], o, oh, ow), dtype=x.dtype)
    geom = _lib.conv_geom(x.shape, w.shape, groups, stride, padding, dilation, (oh, ow))
    _lib.call(op, "keydnn_conv2d_forward", x.dtype, x, w, b, geom, y)
    return y


def conv2d_backward_input(gy: np.ndarray, w: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair,
                          dilation: Pair, groups: int) -> np.ndarray:
    op = "conv2d_backward_input"
    oh, ow = conv2d_output_hw(op, x_shape, w.shape, stride, padding, dilation, groups)
    check_float_pair(op, gy, w)
    check_grad_shape(op, gy, (x_shape[0], w.shape[0], oh, ow))
    if gy.dtype not in _lib.SUFFIX:
        return ref.conv2d_backward_input(gy, w, x_shape, stride, padding, dilation, groups)
    gy, w = np.ascontiguousarray(gy), np.ascontiguousarray(w)
    gx = np.empty(tuple(x_shape), dtype=gy.dtype)
    geom = _lib.conv_geom(tuple(x_shape), w.shape, groups, stride, padding, dilation, (oh, ow))
    _lib.call(op, "keydnn_conv2d_backward_input", gy.dtype, gy, w, geom, gx)
    return gx


def conv2d_backward_weight(gy: np.ndarray, x: np.ndarray, w_shape: tuple, stride: Pair, padding: Pair,
                           dilation: Pair, groups: int) -> np.ndarray:
    op = "conv2d_backward_weight"
    oh, ow = conv2d_output_hw(op, x.shape, w_shape, stride, padding, dilation, groups)
    check_float_pair(op, gy, x)
    check_grad_shape(op, gy, (x.shape[0], w_shape[0], oh, ow))
    if x.dtype not in _lib.SUFFIX:
        return ref.conv2d_backward_weight(gy, x, w_shape, stride, padding, dilation, groups)
    gy, x = np.ascontiguousarray(gy), np.ascontiguousarray(x)
    gw = np.empty(tuple(w_shape), dtype=x.dtype)
    geom = _lib.conv_geom(x.shape, tuple(w_shape), groups, stride, padding, dilation, (oh, ow))
    _lib.call(op, "keydnn_conv2d_backward_weight", x.dtype, gy, x, geom, gw)
    return gw
