"""Fused nn kernels on CUDA: softmax/log_softmax over any axis, softmax cross-entropy, 2-D pooling and
layer norm. Validation reuses the NumPy reference's helpers so both backends accept and refuse the same
inputs with the same errors.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DTypeError, Operand, ShapeError
from keydnn.infrastructure.backends.numpy.norm import layer_norm_axes
from keydnn.infrastructure.backends.numpy.pool import pool2d_output_hw

from . import _lib, faults
from .elementwise import I64, astype, same_device
from .elementwise import check as _check
from .reduce import normalize_axes
from .storage import DTYPE_CODES, CudaArray, contiguous, empty, workspace


def _float(op: str, *arrays: CudaArray) -> int:
    for x in arrays:
        if type(x) is not CudaArray:
            raise DTypeError(op, f"expected a CudaArray, got {type(x).__name__}", *arrays)
        if x.dtype.kind != "f":
            raise DTypeError(op, f"expected a floating dtype, got {x.dtype}", *arrays)
        if x.dtype != arrays[0].dtype:
            raise DTypeError(op, f"dtypes differ: {[str(y.dtype) for y in arrays]}", *arrays)
    same_device(op, *arrays)
    return DTYPE_CODES[arrays[0].dtype]


def _prod(values: Any) -> int:
    p = 1
    for v in values:
        p *= v
    return p


def _softmax(op: str, a: CudaArray, axis: int, log: int) -> CudaArray:
    code = _float(op, a)
    (ax,) = normalize_axes(op, a, int(axis))
    x = contiguous(a)
    out = empty(a.shape, a.dtype, a.device)
    outer, k, inner = _prod(a.shape[:ax]), a.shape[ax], _prod(a.shape[ax + 1 :])
    _check(_lib.lib.kd_softmax(code, out.ptr, x.ptr, outer, k, inner, log), op)
    return out


def softmax(a: CudaArray, axis: int) -> CudaArray:
    return _softmax("softmax", a, axis, 0)


def log_softmax(a: CudaArray, axis: int) -> CudaArray:
    return _softmax("log_softmax", a, axis, 1)


def _softmax_backward(op: str, y: CudaArray, g: CudaArray, axis: int, log: int) -> CudaArray:
    code = _float(op, y)
    if type(g) is not CudaArray:
        raise DTypeError(op, f"the gradient must be a CudaArray, got {type(g).__name__}", y)
    same_device(op, y, g)
    if g.dtype != y.dtype:  # as the composite formula would: computed in the output's dtype
        g = astype(g, y.dtype)
    if g.shape != y.shape:
        from .layout import broadcast_to

        g = broadcast_to(g, y.shape)  # raises ShapeError for shapes that do not broadcast
    (ax,) = normalize_axes(op, y, int(axis))
    yc, gc = contiguous(y), contiguous(g)
    out = empty(y.shape, y.dtype, y.device)
    outer, k, inner = _prod(y.shape[:ax]), y.shape[ax], _prod(y.shape[ax + 1 :])
    _check(_lib.lib.kd_softmax_backward(code, out.ptr, yc.ptr, gc.ptr, outer, k, inner, log), op)
    return out


def softmax_backward(y: CudaArray, g: CudaArray, axis: int) -> CudaArray:
    return _softmax_backward("softmax_backward", y, g, axis, 0)


def log_softmax_backward(y: CudaArray, g: CudaArray, axis: int) -> CudaArray:
    return _softmax_backward("log_softmax_backward", y, g, axis, 1)


def _labels(op: str, labels: CudaArray, n: int) -> CudaArray:
    if type(labels) is not CudaArray:
        raise DTypeError(op, "labels must be a CudaArray", labels)
    if labels.shape != (n,):
        raise ShapeError(op, f"labels have shape {labels.shape}, expected ({n},)", labels)
    if labels.dtype.kind not in "iu":
        raise DTypeError(op, f"labels must be int64, got {labels.dtype}", labels)
    return contiguous(labels if labels.dtype == I64 else astype(labels, I64))


def _label_error(index: int, value: int, c: int, device: int, x_shape: tuple, x_dtype: Any,
                 labels_dtype: Any) -> ShapeError:
    dev = f"cuda:{device}"
    return ShapeError("softmax_cross_entropy", f"labels must be in [0, {c}), got {value} at row {index} "
                      "(checked on the device, reported at the first synchronisation after the call)",
                      Operand(x_shape, x_dtype, dev), Operand(x_shape[:1], labels_dtype, dev))


def softmax_xent_forward(logits: CudaArray, labels: CudaArray) -> tuple[CudaArray, CudaArray]:
    """(loss (N,), probs (N,C)). A label outside [0, C) gives its row a NaN loss, and ShapeError is raised
    at the next read-back or synchronize (see faults): checking here would synchronise every call."""
    op = "softmax_xent_forward"
    code = _float(op, logits)
    if len(logits.shape) != 2:
        raise ShapeError(op, f"logits must be (N, C), got {logits.shape}", logits)
    n, c = logits.shape
    lab = _labels(op, labels, n)
    same_device(op, logits, lab)
    x = contiguous(logits)
    loss = empty((n,), logits.dtype, logits.device)
    probs = empty((n, c), logits.dtype, logits.device)
    fault, ticket = faults.claim(logits.device, _label_error, (c, logits.device, logits.shape, logits.dtype,
                                                               labels.dtype))
    status = _lib.lib.kd_softmax_xent_forward(code, loss.ptr, probs.ptr, x.ptr, lab.ptr, n, c, fault, ticket)
    _check(status, op)
    return loss, probs


def softmax_xent_backward(probs: CudaArray, labels: CudaArray, g: CudaArray) -> CudaArray:
    op = "softmax_xent_backward"
    code = _float(op, probs, g)
    if len(probs.shape) != 2 or g.shape != probs.shape[:1]:
        raise ShapeError(op, f"probs {probs.shape} and g {g.shape} must be (N, C) and (N,)", probs, g)
    n, c = probs.shape
    lab = _labels(op, labels, n)
    same_device(op, probs, lab)
    p, gg = contiguous(probs), contiguous(g)
    out = empty((n, c), probs.dtype, probs.device)
    _check(_lib.lib.kd_softmax_xent_backward(code, out.ptr, p.ptr, lab.ptr, gg.ptr, n, c), op)
    return out


def _pool(x_shape: tuple, out_hw: tuple, kernel: Any, stride: Any, padding: Any) -> _lib.Pool2d:
    n, c, h, w = (int(v) for v in x_shape)
    return _lib.Pool2d(
        n,
        c,
        h,
        w,
        out_hw[0],
        out_hw[1],
        int(kernel[0]),
        int(kernel[1]),
        int(stride[0]),
        int(stride[1]),
        int(padding[0]),
        int(padding[1]),
    )


def max_pool2d_forward(x: CudaArray, kernel: Any, stride: Any, padding: Any) -> tuple[CudaArray, CudaArray]:
    op = "max_pool2d_forward"
    oh, ow = pool2d_output_hw(op, x.shape, kernel, stride, padding)
    code = _float(op, x)
    xc = contiguous(x)
    y = empty(x.shape[:2] + (oh, ow), x.dtype, x.device)
    argmax = empty(y.shape, I64, x.device)
    geom = _pool(x.shape, (oh, ow), kernel, stride, padding)
    _check(_lib.lib.kd_max_pool2d_forward(code, y.ptr, argmax.ptr, xc.ptr, geom), op)
    return y, argmax


def max_pool2d_backward(gy: CudaArray, argmax: CudaArray, x_shape: Any) -> CudaArray:
    """Scatter-add gy to the argmax cells (atomics: overlapping windows may differ in the last bit between
    runs). Out-of-range argmax entries are dropped, since a kernel cannot raise."""
    op = "max_pool2d_backward"
    x_shape = tuple(int(v) for v in x_shape)
    code = _float(op, gy)
    if len(x_shape) != 4 or len(gy.shape) != 4 or gy.shape[:2] != x_shape[:2]:
        raise ShapeError(op, f"gradient {gy.shape} does not fit input shape {x_shape}", gy)
    if type(argmax) is not CudaArray or argmax.shape != gy.shape:
        raise ShapeError(op, f"argmax must be a CudaArray of shape {gy.shape}", gy, argmax)
    same_device(op, gy, argmax)
    idx = contiguous(argmax if argmax.dtype == I64 else astype(argmax, I64))
    g = contiguous(gy)
    gx = empty(x_shape, gy.dtype, gy.device)
    # Only the plane sizes matter to the scatter; the window geometry is not part of this contract.
    geom = _pool(x_shape, gy.shape[2:], (1, 1), (1, 1), (0, 0))
    if gx.size:
        _check(_lib.lib.kd_max_pool2d_backward(code, gx.ptr, g.ptr, idx.ptr, geom), op)
    return gx


def avg_pool2d_forward(x: CudaArray, kernel: Any, stride: Any, padding: Any) -> CudaArray:
    op = "avg_pool2d_forward"
    oh, ow = pool2d_output_hw(op, x.shape, kernel, stride, padding)
    code = _float(op, x)
    xc = contiguous(x)
    y = empty(x.shape[:2] + (oh, ow), x.dtype, x.device)
    _check(
        _lib.lib.kd_avg_pool2d_forward(
            code, y.ptr, xc.ptr, _pool(x.shape, (oh, ow), kernel, stride, padding)
        ),
        op,
    )
    return y


def avg_pool2d_backward(gy: CudaArray, x_shape: Any, kernel: Any, stride: Any, padding: Any) -> CudaArray:
    op = "avg_pool2d_backward"
    x_shape = tuple(int(v) for v in x_shape)
    oh, ow = pool2d_output_hw(op, x_shape, kernel, stride, padding)
    code = _float(op, gy)
    if gy.shape != x_shape[:2] + (oh, ow):
        raise ShapeError(op, f"gradient shape {gy.shape}, expected {x_shape[:2] + (oh, ow)}", gy)
    g = contiguous(gy)
    gx = empty(x_shape, gy.dtype, gy.device)
    _check(
        _lib.lib.kd_avg_pool2d_backward(
            code, gx.ptr, g.ptr, _pool(x_shape, (oh, ow), kernel, stride, padding)
        ),
        op,
    )
    return gx


def _norm_params(op: str, x: CudaArray, n_axes: int, *params: CudaArray | None) -> tuple[int, int]:
    layer_norm_axes(op, x.shape, n_axes)
    tail = x.shape[len(x.shape) - n_axes :]
    for p in params:
        if p is None:
            continue
        if p.shape != tail:
            raise ShapeError(op, f"parameter has shape {p.shape}, expected {tail}", x, p)
        if p.dtype != x.dtype:
            raise DTypeError(op, f"parameter dtype {p.dtype} differs from input dtype {x.dtype}", x, p)
    cols = _prod(tail)
    return x.size // cols if cols else 0, cols


def batch_norm_running_update(running_mean: CudaArray, running_var: CudaArray, mean: CudaArray, invstd: CudaArray,
                              momentum: float, eps: float, n: int) -> None:
    op = "batch_norm_running_update"
    code = _float(op, running_mean)
    arrays = (running_mean, running_var, mean, invstd)
    if any(type(a) is not CudaArray or a.shape != running_mean.shape or a.dtype != running_mean.dtype
           or not a.is_contiguous for a in arrays):
        raise ShapeError(op, "running statistics and batch statistics must be contiguous (C,) arrays of one dtype",
                         *arrays)
    same_device(op, *arrays)
    _check(_lib.lib.kd_batch_norm_running_update(code, running_mean.ptr, running_var.ptr, mean.ptr, invstd.ptr,
                                                 running_mean.size, float(momentum), float(eps),
                                                 n / max(n - 1, 1)), op)


def layer_norm_forward(
    x: CudaArray, gamma: CudaArray | None, beta: CudaArray | None, n_axes: int, eps: float
) -> tuple[CudaArray, CudaArray, CudaArray]:
    op = "layer_norm_forward"
    code = _float(op, x, *(p for p in (gamma, beta) if p is not None))
    rows, cols = _norm_params(op, x, n_axes, gamma, beta)
    xc = contiguous(x)
    g = contiguous(gamma) if gamma is not None else None
    b = contiguous(beta) if beta is not None else None
    stat_shape = x.shape[: len(x.shape) - n_axes] + (1,) * n_axes
    y = empty(x.shape, x.dtype, x.device)
    mean = empty(stat_shape, x.dtype, x.device)
    invstd = empty(stat_shape, x.dtype, x.device)
    _check(
        _lib.lib.kd_layer_norm_forward(
            code,
            y.ptr,
            mean.ptr,
            invstd.ptr,
            xc.ptr,
            g.ptr if g else None,
            b.ptr if b else None,
            rows,
            cols,
            float(eps),
        ),
        op,
    )
    return y, mean, invstd


def layer_norm_backward(
    gy: CudaArray, x: CudaArray, gamma: CudaArray | None, mean: CudaArray, invstd: CudaArray, n_axes: int
) -> tuple[CudaArray, CudaArray | None, CudaArray | None]:
    op = "layer_norm_backward"
    code = _float(op, gy, x, mean, invstd, *(p for p in (gamma,) if p is not None))
    rows, cols = _norm_params(op, x, n_axes, gamma)
    if gy.shape != x.shape:
        raise ShapeError(op, f"gradient shape {gy.shape} differs from input shape {x.shape}", gy, x)
    if mean.size != rows or invstd.size != rows:
        raise ShapeError(op, f"mean/invstd must hold {rows} values", mean, invstd)
    g, xc, mu, inv = contiguous(gy), contiguous(x), contiguous(mean), contiguous(invstd)
    gam = contiguous(gamma) if gamma is not None else None
    gx = empty(x.shape, x.dtype, x.device)
    tail = x.shape[len(x.shape) - n_axes :]
    ggamma = empty(tail, x.dtype, x.device) if gamma is not None else None
    gbeta = empty(tail, x.dtype, x.device) if gamma is not None else None
    ws_bytes = _lib.lib.kd_layer_norm_backward_workspace(code, rows, cols) if gamma is not None else 0
    ws = workspace(ws_bytes, x.device) if ws_bytes else None
    _check(
        _lib.lib.kd_layer_norm_backward(
            code,
            gx.ptr,
            ggamma.ptr if ggamma else None,
            gbeta.ptr if gbeta else None,
            g.ptr,
            xc.ptr,
            gam.ptr if gam else None,
            mu.ptr,
            inv.ptr,
            rows,
            cols,
            ws.ptr if ws else None,
            ws_bytes,
        ),
        op,
    )
    return gx, ggamma, gbeta
