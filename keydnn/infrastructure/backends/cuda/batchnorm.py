"""cuDNN batch normalisation kernels on CudaArray: training-mode forward and backward over every axis but 1.

x of shape (N, C, *rest) is described to cuDNN as (N, C, prod(rest), 1) in SPATIAL mode, so (N, C) and
(N, C, H, W) take one path. Running statistics are the caller's business: cuDNN is given none.
gamma/beta may be None (no affine transform), as in the NumPy reference.
"""

from __future__ import annotations

import math

import numpy as np

from keydnn.domain.errors import DeviceMismatchError, DTypeError, ShapeError

from ..numpy.norm import batch_norm_axes
from . import _cudart, _cudnn, storage
from .storage import CudaArray

_DTYPES = {np.dtype(np.float32): _cudnn.DATA_FLOAT, np.dtype(np.float64): _cudnn.DATA_DOUBLE}
# cuDNN takes epsilon in the backward call too but uses the saved inverse std we pass; it only asks that
# epsilon be at least CUDNN_BN_MIN_EPSILON (0 since cuDNN 7.6, 1e-5 before).
_BACKWARD_EPS = 1e-5
_descs: dict[tuple, tuple[int, int]] = {}


def _describe(op: str, x: CudaArray) -> tuple[int, int, int]:
    """(cuDNN dtype, x descriptor, per-channel descriptor), cached by shape and dtype."""
    code = _DTYPES[x.dtype]
    shape4 = (x.shape[0], x.shape[1], math.prod(x.shape[2:]), 1)
    key = (code, shape4)
    found = _descs.get(key)
    if found is None:
        xd = _cudnn.tensor_4d(op, code, shape4)
        found = _descs[key] = (xd, _cudnn.batch_norm_param(op, xd, _cudnn.BATCHNORM_SPATIAL))
    return code, *found


def _check(op: str, x: CudaArray, gy: CudaArray | None, *per_channel: CudaArray | None) -> None:
    operands = tuple(t for t in (x, gy, *per_channel) if t is not None)
    if any(t.device != x.device for t in operands):
        raise DeviceMismatchError(op, "operands are on different devices", *operands)
    if any(t.dtype != x.dtype for t in operands) or x.dtype not in _DTYPES:
        raise DTypeError(op, "operands must share a dtype, float32 or float64", *operands)
    batch_norm_axes(op, x.shape)
    if gy is not None and gy.shape != x.shape:
        raise ShapeError(op, f"gradient shape {gy.shape} differs from input shape {x.shape}", gy, x)
    if any(t is not None and t.shape != (x.shape[1],) for t in per_channel):
        raise ShapeError(op, f"per-channel operands must have shape ({x.shape[1]},)", *operands)


def _per_channel(op: str, t: CudaArray | None, x: CudaArray, fill: int) -> CudaArray:
    """``t`` made contiguous, or (no affine transform) a (C,) buffer filled with the scalar at ``fill``."""
    if t is not None:
        return storage.contiguous(t)
    pd = _describe(op, x)[2]
    out = storage.empty((x.shape[1],), x.dtype, x.device)
    _cudnn.call(op, "cudnnSetTensor", _cudnn.handle(x.device), pd, out.ptr, fill)
    return out


def batch_norm_forward(x: CudaArray, gamma: CudaArray | None, beta: CudaArray | None, eps: float
                       ) -> tuple[CudaArray, CudaArray, CudaArray]:
    """(y, mean (C,), invstd (C,)) with the biased batch variance: y = (x - mean) * invstd * gamma + beta."""
    op = "batch_norm_forward"
    _check(op, x, None, gamma, beta)
    _cudart.set_device(x.device)
    code, xd, pd = _describe(op, x)
    one, zero = _cudnn.ONE_ZERO[code]
    x = storage.contiguous(x)
    gamma, beta = _per_channel(op, gamma, x, one), _per_channel(op, beta, x, zero)
    c = x.shape[1]
    y = storage.empty(x.shape, x.dtype, x.device)
    mean, invstd = storage.empty((c,), x.dtype, x.device), storage.empty((c,), x.dtype, x.device)
    # The averaging factor goes with the running statistics, which are null here.
    _cudnn.call(op, "cudnnBatchNormalizationForwardTraining", _cudnn.handle(x.device),
                _cudnn.BATCHNORM_SPATIAL, one, zero, xd, x.ptr, xd, y.ptr, pd, gamma.ptr, beta.ptr,
                1.0, None, None, float(eps), mean.ptr, invstd.ptr)
    return y, mean, invstd


def batch_norm_backward(gy: CudaArray, x: CudaArray, gamma: CudaArray | None, mean: CudaArray,
                        invstd: CudaArray) -> tuple[CudaArray, CudaArray | None, CudaArray | None]:
    """(gx, ggamma, gbeta) for the forward above, from its mean and invstd; None grads when gamma is None."""
    op = "batch_norm_backward"
    _check(op, x, gy, gamma, mean, invstd)
    _cudart.set_device(x.device)
    code, xd, pd = _describe(op, x)
    one, zero = _cudnn.ONE_ZERO[code]
    gy, x, mean, invstd = (storage.contiguous(t) for t in (gy, x, mean, invstd))
    scale = _per_channel(op, gamma, x, one)
    c = x.shape[1]
    gx = storage.empty(x.shape, x.dtype, x.device)
    ggamma, gbeta = storage.empty((c,), x.dtype, x.device), storage.empty((c,), x.dtype, x.device)
    _cudnn.call(op, "cudnnBatchNormalizationBackward", _cudnn.handle(x.device), _cudnn.BATCHNORM_SPATIAL,
                one, zero, one, zero, xd, x.ptr, xd, gy.ptr, xd, gx.ptr, pd, scale.ptr, ggamma.ptr,
                gbeta.ptr, _BACKWARD_EPS, mean.ptr, invstd.ptr)
    if gamma is None:
        return gx, None, None
    return gx, ggamma, gbeta
