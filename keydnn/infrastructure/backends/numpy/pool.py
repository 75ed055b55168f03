"""NumPy reference kernels for 2-D max and average pooling (NCHW), one strided slice per kernel offset.

Semantics every backend matches: max pooling pads with -inf, returns the flat H*W index of the first
maximum in row-major window order (a NaN wins over numbers, the first NaN over later ones); average pooling
counts padded cells as zeros and always divides by kh*kw. Padding may be at most half the kernel, so every
window holds a real cell.
"""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.backends.numpy.conv import _check_pair, check_grad_shape

Pair = tuple[int, int]


def pool2d_output_hw(op: str, x_shape: tuple, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Validate a pooling configuration and return (OH, OW); raises ShapeError naming ``op`` otherwise."""
    x_shape = tuple(x_shape)
    if len(x_shape) != 4:
        raise ShapeError(op, f"input must be 4-D NCHW, got shape {x_shape}")
    if min(x_shape) < 0 or min(x_shape[1:]) < 1:
        raise ShapeError(op, f"empty channel/spatial dimensions in input {x_shape}")
    kh, kw = _check_pair(op, "kernel", kernel, 1)
    sh, sw = _check_pair(op, "stride", stride, 1)
    ph, pw = _check_pair(op, "padding", padding, 0)
    if ph > kh // 2 or pw > kw // 2:
        raise ShapeError(op, f"padding {(ph, pw)} must be at most half the kernel {(kh, kw)}")
    h, w = x_shape[2:]
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ShapeError(op, f"kernel {(kh, kw)} is larger than the padded input {(h + 2 * ph, w + 2 * pw)}")
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def check_float(op: str, x: np.ndarray) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(op, f"expected a floating dtype, got {x.dtype}", x)


def _offset_slices(kernel: Pair, stride: Pair, out_hw: Pair):
    """(i, j, rows, cols): for each kernel offset, the padded-input slices that offset reads."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


SCATTER_BYTES = 8 * 2**20  # float64 accumulator of max_pool2d_backward, per block of planes


def max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair,
                       padding: Pair) -> tuple[np.ndarray, np.ndarray]:
    op = "max_pool2d_forward"
    oh, ow = pool2d_output_hw(op, x.shape, kernel, stride, padding)
    check_float(op, x)
    kw, (sh, sw), (ph, pw) = kernel[1], stride, padding
    w = x.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf) if ph or pw else x
    best = np.full(x.shape[:2] + (oh, ow), -np.inf, dtype=x.dtype)
    # Start from each window's first real cell so an all -inf window still points inside the image.
    first_i = np.maximum(ph - sh * np.arange(oh), 0)[:, None]
    first_j = np.maximum(pw - sw * np.arange(ow), 0)[None, :]
    k = np.broadcast_to(first_i * kw + first_j, best.shape).astype(np.int64)
    for i, j, rows, cols in _offset_slices(kernel, stride, (oh, ow)):
        v = xp[:, :, rows, cols]
        take = (v > best) | (np.isnan(v) & ~np.isnan(best))
        np.copyto(best, v, where=take)
        k[take] = i * kw + j
    # flat index = (out row * sh - ph + k // kw) * w + out col * sw - pw + k % kw, built in place (integers:
    # the order of the additions changes nothing), so two index-sized temporaries instead of four
    idx = k // kw
    idx += (np.arange(oh) * sh - ph)[:, None]
    idx *= w
    np.remainder(k, kw, out=k)
    k += (np.arange(ow) * sw - pw)[None, :]
    idx += k
    return best, idx


def max_pool2d_backward(gy: np.ndarray, argmax: np.ndarray, x_shape: tuple) -> np.ndarray:
    op = "max_pool2d_backward"
    x_shape = tuple(x_shape)
    if len(x_shape) != 4 or gy.ndim != 4 or tuple(gy.shape[:2]) != x_shape[:2]:
        raise ShapeError(op, f"gradient {tuple(gy.shape)} does not fit input shape {x_shape}", gy)
    check_grad_shape(op, argmax, gy.shape)
    check_float(op, gy)
    n, c, h, w = x_shape
    planes = n * c
    if planes == 0 or gy.size == 0:
        return np.zeros(x_shape, dtype=gy.dtype)
    idx = np.asarray(argmax, dtype=np.int64).reshape(planes, -1)
    if idx.min() < 0 or idx.max() >= h * w:
        raise ShapeError(op, f"argmax indices fall outside the {h}x{w} planes")
    g = gy.reshape(planes, -1)
    gx = np.empty((planes, h * w), dtype=gy.dtype)
    # bincount accumulates repeated indices (overlapping windows) in one vectorised pass, in float64; a
    # block of planes at a time, so its float64 temporaries stay bounded (each plane's sum is unchanged).
    step = max(1, SCATTER_BYTES // (8 * h * w))
    for p0 in range(0, planes, step):
        m = min(step, planes - p0)
        flat = (idx[p0:p0 + m] + (np.arange(m, dtype=np.int64) * (h * w))[:, None]).ravel()
        gx[p0:p0 + m] = np.bincount(flat, weights=g[p0:p0 + m].reshape(-1).astype(np.float64),
                                    minlength=m * h * w).reshape(m, h * w)
    return gx.reshape(x_shape)


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    op = "avg_pool2d_forward"
    oh, ow = pool2d_output_hw(op, x.shape, kernel, stride, padding)
    check_float(op, x)
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    acc = np.zeros(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for _, _, rows, cols in _offset_slices(kernel, stride, (oh, ow)):
        acc += xp[:, :, rows, cols]
    acc *= x.dtype.type(1.0 / (kernel[0] * kernel[1]))
    return acc


def avg_pool2d_backward(gy: np.ndarray, x_shape: tuple, kernel: Pair, stride: Pair,
                        padding: Pair) -> np.ndarray:
    op = "avg_pool2d_backward"
    oh, ow = pool2d_output_hw(op, x_shape, kernel, stride, padding)
    check_grad_shape(op, gy, tuple(x_shape[:2]) + (oh, ow))
    check_float(op, gy)
    n, c, h, w = x_shape
    ph, pw = padding
    g = gy * gy.dtype.type(1.0 / (kernel[0] * kernel[1]))
    gxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
    for _, _, rows, cols in _offset_slices(kernel, stride, (oh, ow)):
        gxp[:, :, rows, cols] += g
    return gxp[:, :, ph:ph + h, pw:pw + w].copy() if (ph or pw) else gxp
