"""Native pooling kernels (libkeydnn_cpu), same signatures and semantics as backends/numpy/pool.py."""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.backends.native_cpu import _lib
from keydnn.infrastructure.backends.numpy import pool as ref
from keydnn.infrastructure.backends.numpy.conv import Pair, check_grad_shape
from keydnn.infrastructure.backends.numpy.pool import check_float, pool2d_output_hw


def max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair,
                       padding: Pair) -> tuple[np.ndarray, np.ndarray]:
    op = "max_pool2d_forward"
    oh, ow = pool2d_output_hw(op, x.shape, kernel, stride, padding)
    check_float(op, x)
    if x.dtype not in _lib.SUFFIX:
        return ref.max_pool2d_forward(x, kernel, stride, padding)
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    geom = _lib.pool_geom(n * c, h, w, kernel, stride, padding, (oh, ow))
    _lib.call(op, "keydnn_max_pool2d_forward", x.dtype, x, geom, y, argmax)
    return y, argmax


def max_pool2d_backward(gy: np.ndarray, argmax: np.ndarray, x_shape: tuple) -> np.ndarray:
    op = "max_pool2d_backward"
    x_shape = tuple(x_shape)
    if len(x_shape) != 4 or gy.ndim != 4 or tuple(gy.shape[:2]) != x_shape[:2] or min(x_shape[1:]) < 1:
        raise ShapeError(op, f"gradient {tuple(gy.shape)} does not fit input shape {x_shape}", gy)
    check_grad_shape(op, argmax, gy.shape)
    check_float(op, gy)
    if gy.dtype not in _lib.SUFFIX:
        return ref.max_pool2d_backward(gy, argmax, x_shape)
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    gy = np.ascontiguousarray(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    gx = np.empty(x_shape, dtype=gy.dtype)
    _lib.call(op, "keydnn_max_pool2d_backward", gy.dtype, gy, argmax, n * c, h * w, oh * ow, gx)
    return gx


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    op = "avg_pool2d_forward"
    oh, ow = pool2d_output_hw(op, x.shape, kernel, stride, padding)
    check_float(op, x)
    if x.dtype not in _lib.SUFFIX:
        return ref.avg_pool2d_forward(x, kernel, stride, padding)
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    _lib.call(op, "keydnn_avg_pool2d_forward", x.dtype, x,
              _lib.pool_geom(n * c, h, w, kernel, stride, padding, (oh, ow)), y)
    return y


def avg_pool2d_backward(gy: np.ndarray, x_shape: tuple, kernel: Pair, stride: Pair,
                        padding: Pair) -> np.ndarray:
    op = "avg_pool2d_backward"
    oh, ow = pool2d_output_hw(op, x_shape, kernel, stride, padding)
    check_grad_shape(op, gy, tuple(x_shape[:2]) + (oh, ow))
    check_float(op, gy)
    if gy.dtype not in _lib.SUFFIX:
        return ref.avg_pool2d_backward(gy, x_shape, kernel, stride, padding)
    n, c, h, w = x_shape
    gy = np.ascontiguousarray(gy)
    gx = np.empty(tuple(x_shape), dtype=gy.dtype)
    _lib.call(op, "keydnn_avg_pool2d_backward", gy.dtype, gy,
              _lib.pool_geom(n * c, h, w, kernel, stride, padding, (oh, ow)), gx)
    return gx
