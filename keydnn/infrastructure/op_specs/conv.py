"""Registry entries for the convolution, pooling and normalisation ops, with references written
independently of the backends' im2col kernels (a sum over kernel offsets, sliding windows, plain formulas)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.ops import conv as cv
from keydnn.infrastructure.ops import norm as nm
from keydnn.infrastructure.ops import pool as pl
from keydnn.infrastructure.registry import ErrorSample, OpSpec, Sample, rand, register


def _p(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = _p(stride), _p(padding), _p(dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xg = xp.reshape(n, groups, cg, *xp.shape[2:])
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    y = np.zeros((n, groups, o // groups, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xg[
                ..., i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw
            ]
            y += np.einsum("ngchw,goc->ngohw", patch, wg[..., i, j])
    y = y.reshape(n, o, oh, ow)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = _p(stride), _p(padding), _p(output_padding), _p(dilation)
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    full = np.zeros(
        (n, groups, cog, (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw)
    )
    xg = x.reshape(n, groups, cin // groups, h, wd)
    wg = w.reshape(groups, cin // groups, cog, kh, kw)
    for i in range(kh):
        for j in range(kw):
            full[..., i * dh : i * dh + sh * (h - 1) + 1 : sh, j * dw : j * dw + sw * (wd - 1) + 1 : sw] += (
                np.einsum("ngchw,gco->ngohw", xg, wg[..., i, j])
            )
    y = full[..., ph : full.shape[-2] - ph, pw : full.shape[-1] - pw].reshape(
        n, groups * cog, -1, full.shape[-1] - 2 * pw
    )
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _windows(x, k, s, p, fill):
    (kh, kw), (sh, sw), (ph, pw) = _p(k), _p(s if s is not None else k), _p(p)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def max_pool2d_ref(x, kernel_size, stride=None, padding=0):
    return _windows(x, kernel_size, stride, padding, -np.inf).max(axis=(-2, -1))


def avg_pool2d_ref(x, kernel_size, stride=None, padding=0):
    return _windows(x, kernel_size, stride, padding, 0.0).mean(axis=(-2, -1))


def batch_norm_ref(x, gamma, beta, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xhat = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return xhat * gamma.reshape(shape) + beta.reshape(shape)


def layer_norm_ref(x, normalized_shape, gamma, beta, eps=1e-5):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    return (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps) * gamma + beta


def _f():
    import torch.nn.functional as F

    return F


# ---- samples -----------------------------------------------------------------------------------------
_CONV_CASES = (  # x shape, w shape, kwargs
    ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": 1}),
    ((1, 4, 9, 8), (6, 2, 3, 2), {"stride": (2, 1), "padding": (1, 0), "groups": 2}),
    ((2, 2, 8, 9), (3, 2, 3, 3), {"dilation": 2, "padding": 2, "stride": 2}),
    ((3, 2, 5, 5), (2, 2, 1, 1), {}),
    ((1, 3, 6, 7), (3, 3, 4, 2), {"padding": "same"}),
    ((2, 6, 5, 5), (6, 1, 3, 3), {"padding": 1, "groups": 6}),
)


def _conv_samples(dtype, rng):
    out = []
    for xs, ws, kw in _CONV_CASES:
        out.append(Sample((rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])), kw, label=f"{xs}*{ws} {kw}"))
    out.append(Sample((rand(rng, 2, 3, 5, 5), rand(rng, 2, 3, 3, 3)), {"stride": 2}, label="no bias"))
    return out


def _conv_fn(x, w, b=None, **kw):
    return cv.conv2d(x, w, b, **kw)


def _conv_ref(x, w, b=None, **kw):
    if kw.get("padding") == "same":
        kh, kw_ = w.shape[2:]
        x = np.pad(x, ((0, 0), (0, 0), ((kh - 1) // 2, kh // 2), ((kw_ - 1) // 2, kw_ // 2)))
        kw = {**kw, "padding": 0}
    return conv2d_ref(x, w, b, **kw)


def _conv_errors():
    x, w = np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3))
    return [
        ErrorSample(Sample((np.ones((3, 5, 5)), w)), ShapeError, "4-D"),
        ErrorSample(Sample((x, np.ones((2, 4, 3, 3)))), ShapeError, "input channels"),
        ErrorSample(Sample((x, np.ones((2, 3, 7, 7)))), ShapeError, "larger than the padded"),
        ErrorSample(Sample((x, w), {"stride": 0}), ShapeError, "stride"),
        ErrorSample(Sample((x, w), {"dilation": (1, -1)}), ShapeError, "dilation"),
        ErrorSample(
            Sample((np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3))), {"groups": 2}), ShapeError, "groups"
        ),
        ErrorSample(Sample((x, w, np.ones(3))), ShapeError, "bias"),
        ErrorSample(Sample((x, w.astype(np.int64))), DTypeError, "dtype"),
    ]


register(
    OpSpec(
        "conv2d",
        "conv",
        _conv_fn,
        _conv_ref,
        _conv_samples,
        tol={"float32": (2e-4, 2e-5), "float64": (1e-10, 1e-12)},
        torch_fn=lambda x, w, b=None, **kw: _f().conv2d(x, w, b, **kw),
        errors=_conv_errors,
        bench=lambda dt, rng: Sample(
            (
                rng.standard_normal((32, 16, 32, 32)),
                rng.standard_normal((32, 16, 3, 3)),
                rng.standard_normal(32),
            ),
            {"padding": 1},
        ),
        cost=lambda s: (
            2.0 * np.prod(s.args[1].shape) * s.args[0].shape[0] * np.prod(s.args[0].shape[2:]),
            4.0
            * (
                s.args[0].size
                + s.args[1].size
                + s.args[0].shape[0] * s.args[1].shape[0] * np.prod(s.args[0].shape[2:])
            ),
        ),
    )
)


def _convt_samples(dtype, rng):
    cases = (
        ((2, 4, 3, 4), (4, 3, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
        ((1, 4, 5, 5), (4, 2, 2, 3), {"groups": 2}),
        ((2, 3, 4, 3), (3, 2, 3, 3), {"stride": (2, 1), "dilation": 2, "padding": (2, 1)}),
    )
    return [
        Sample((rand(rng, *xs), rand(rng, *ws), rand(rng, ws[1] * kw.get("groups", 1))), kw, label=str(kw))
        for xs, ws, kw in cases
    ]


register(
    OpSpec(
        "conv_transpose2d",
        "conv",
        lambda x, w, b=None, **kw: cv.conv_transpose2d(x, w, b, **kw),
        conv_transpose2d_ref,
        _convt_samples,
        tol={"float32": (2e-4, 2e-5), "float64": (1e-10, 1e-12)},
        torch_fn=lambda x, w, b=None, **kw: _f().conv_transpose2d(x, w, b, **kw),
        errors=lambda: [
            ErrorSample(
                Sample((np.ones((1, 2, 3, 3)), np.ones((2, 2, 3, 3))), {"stride": 2, "output_padding": 2}),
                ShapeError,
                "output_padding",
            ),
            ErrorSample(Sample((np.ones((1, 3, 3, 3)), np.ones((2, 2, 3, 3)))), ShapeError, "channels"),
        ],
        bench=lambda dt, rng: Sample(
            (rng.standard_normal((8, 32, 32, 32)), rng.standard_normal((32, 16, 3, 3)), rng.standard_normal(16)),
            {"stride": 2, "padding": 1, "output_padding": 1},
        ),
    )
)


# ---- pooling -------------------------------------------------------------------------------------------
_POOL_CASES = (
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((1, 2, 7, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 1, 6, 5), {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 1)}),
    ((1, 2, 5, 5), {"kernel_size": 3, "stride": 1}),
)


def _pool_samples(dtype, rng):
    return [Sample((rand(rng, *xs),), kw, label=f"{xs} {kw}") for xs, kw in _POOL_CASES]


def _pool_errors(op):
    return lambda: [
        ErrorSample(Sample((np.ones((2, 3, 4)),), {"kernel_size": 2}), ShapeError, "4-D"),
        ErrorSample(Sample((np.ones((1, 1, 4, 4)),), {"kernel_size": 5}), ShapeError, "larger"),
        ErrorSample(
            Sample((np.ones((1, 1, 4, 4)),), {"kernel_size": 2, "padding": 2}), ShapeError, "half the kernel"
        ),
        ErrorSample(Sample((np.ones((1, 1, 4, 4)),), {"kernel_size": 2, "stride": 0}), ShapeError, "stride"),
    ]


_POOL_BENCH = lambda dt, rng: Sample((rng.standard_normal((8, 32, 64, 64)),), {"kernel_size": 2})  # noqa: E731
register(
    OpSpec(
        "max_pool2d",
        "pool",
        pl.max_pool2d,
        max_pool2d_ref,
        _pool_samples,
        torch_fn=lambda x, **kw: _f().max_pool2d(x, **kw),
        errors=_pool_errors("max_pool2d"),
        bench=_POOL_BENCH,
    )
)
register(
    OpSpec(
        "avg_pool2d",
        "pool",
        pl.avg_pool2d,
        avg_pool2d_ref,
        _pool_samples,
        torch_fn=lambda x, **kw: _f().avg_pool2d(x, count_include_pad=True, **kw),
        errors=_pool_errors("avg_pool2d"),
        bench=_POOL_BENCH,
    )
)
register(
    OpSpec(
        "global_avg_pool2d",
        "pool",
        pl.global_avg_pool2d,
        lambda x: x.mean(axis=(2, 3), keepdims=True),
        lambda dt, rng: [Sample((rand(rng, 2, 3, 5, 4),)), Sample((rand(rng, 1, 2, 1, 1),), label="1x1")],
        torch_fn=lambda x: _f().adaptive_avg_pool2d(x, 1),
        errors=lambda: [ErrorSample(Sample((np.ones((2, 3)),)), ShapeError, "4-D")],
        bench=lambda dt, rng: Sample((rng.standard_normal((32, 64, 28, 28)),)),
    )
)


# ---- normalisation -------------------------------------------------------------------------------------
def _bn_samples(dtype, rng):
    return [
        Sample((rand(rng, 4, 3, 5, 2), rand(rng, 3), rand(rng, 3)), label="2d"),
        Sample((rand(rng, 6, 5), rand(rng, 5), rand(rng, 5)), label="1d"),
        Sample((rand(rng, 1, 2, 3, 3) * 5 + 3, rand(rng, 2), rand(rng, 2)), label="batch 1, offset"),
    ]


register(
    OpSpec(
        "batch_norm",
        "norm",
        lambda x, g, b: nm.batch_norm(x, g, b),
        batch_norm_ref,
        _bn_samples,
        tol={"float32": (2e-4, 2e-5), "float64": (1e-9, 1e-11)},
        torch_fn=lambda x, g, b: _f().batch_norm(x, None, None, g, b, training=True, eps=1e-5),
        errors=lambda: [
            ErrorSample(Sample((np.ones(4), np.ones(4), np.ones(4))), ShapeError, "2-D"),
            ErrorSample(Sample((np.ones((2, 3)), np.ones(4), np.ones(4))), ShapeError, "parameter"),
            ErrorSample(Sample((np.ones((1, 3)), np.ones(3), np.ones(3))), ShapeError, "more than 1 value"),
        ],
        bench=lambda dt, rng: Sample((rng.standard_normal((32, 64, 28, 28)), np.ones(64), np.zeros(64))),
    )
)


def _ln_samples(dtype, rng):
    return [
        Sample((rand(rng, 4, 6), (6,), rand(rng, 6), rand(rng, 6)), label="last axis"),
        Sample((rand(rng, 2, 3, 4, 5), (4, 5), rand(rng, 4, 5), rand(rng, 4, 5)), label="two axes"),
    ]


register(
    OpSpec(
        "layer_norm",
        "norm",
        lambda x, s, g, b: nm.layer_norm(x, s, g, b),
        layer_norm_ref,
        _ln_samples,
        tol={"float32": (2e-4, 2e-5), "float64": (1e-9, 1e-11)},
        torch_fn=lambda x, s, g, b: _f().layer_norm(x, s, g, b, eps=1e-5),
        errors=lambda: [
            ErrorSample(
                Sample((np.ones((2, 3)), (4,), np.ones(4), np.ones(4))), ShapeError, "normalized_shape"
            )
        ],
        bench=lambda dt, rng: Sample((rng.standard_normal((256, 1024)), (1024,), np.ones(1024), np.zeros(1024))),
    )
)
