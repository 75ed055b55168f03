"""CUDA reductions and layout kernels against NumPy: every axis form, keepdims, NaN and ties, long rows and
columns that take the split (two-stage) path, determinism; reshape/transpose/broadcast views, concatenate
and stack."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.domain.errors import AxisError, ShapeError
from tests.cuda.cuda_helpers import assert_close

pytestmark = pytest.mark.cuda

SHAPES_AXES = [
    ((), None),
    ((1,), 0),
    ((7,), None),
    ((5, 6), 0),
    ((5, 6), 1),
    ((5, 6), (0, 1)),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), 1),
    ((2, 3, 4, 5), (1, 2)),
    ((2, 3, 4, 5), (0, 3)),
    ((3, 1, 4), (0, 2)),
    ((4, 0), 0),
    ((300_000,), None),
    ((3, 70_000), 1),
    ((70_000, 3), 0),
    ((50, 2000, 3), 1),
    ((9, 1500), 1),
    ((2, 40_000), 0),
]


def _host(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) > 0.5
    return rng.integers(-1000, 1000, shape)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape_axis", SHAPES_AXES, ids=str)
def test_sum_max_min(kt, rng, shape_axis, dtype, keepdims):
    shape, axis = shape_axis
    a = _host(rng, shape, dtype)
    da = kt.from_host(a)
    n = a.size if axis is None else int(np.prod([shape[ax] for ax in np.atleast_1d(axis)]))
    rtol = 1e-5 * max(1.0, np.log2(max(n, 2))) if dtype == np.float32 else 1e-12
    assert_close(
        kt.to_host(kt.sum(da, axis, keepdims)),
        np.sum(a, axis=axis, keepdims=keepdims),
        rtol=rtol,
        atol=1e-4 if dtype == np.float32 else 1e-10,
    )
    if n == 0:
        with pytest.raises(ShapeError):
            kt.max(da, axis, keepdims)
        return
    assert_close(kt.to_host(kt.max(da, axis, keepdims)), np.max(a, axis=axis, keepdims=keepdims))
    assert_close(kt.to_host(kt.min(da, axis, keepdims)), np.min(a, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize(
    "shape_axis",
    [
        ((7,), None),
        ((5, 6), 0),
        ((5, 6), 1),
        ((2, 3, 4), 1),
        ((3, 1, 4), 2),
        ((300_000,), None),
        ((3, 70_000), 1),
        ((70_000, 3), 0),
    ],
    ids=str,
)
def test_argmax_first_of_ties(kt, rng, shape_axis, dtype):
    shape, axis = shape_axis
    a = _host(rng, shape, dtype)
    if np.dtype(dtype).kind != "b":
        a = (a // 3 if dtype == np.int64 else np.round(a * 2)).astype(dtype)  # many ties
    got = kt.to_host(kt.argmax(kt.from_host(a), axis, False))
    assert_close(got, np.argmax(a, axis=axis).astype(np.int64))
    assert_close(kt.to_host(kt.argmax(kt.from_host(a), axis, True)), np.argmax(a, axis=axis, keepdims=True))


def test_nan_propagates(kt):
    a = np.array([[1.0, np.nan, 3.0, np.nan], [4.0, 2.0, 5.0, 5.0]], np.float32)
    da = kt.from_host(a)
    assert_close(kt.to_host(kt.max(da, 1, False)), np.max(a, axis=1))
    assert_close(kt.to_host(kt.min(da, 1, False)), np.min(a, axis=1))
    assert_close(kt.to_host(kt.argmax(da, 1, False)), np.argmax(a, axis=1))


def test_bool_sum_and_strided_input(kt, rng):
    m = rng.random((30, 40)) > 0.3
    assert_close(kt.to_host(kt.sum(kt.from_host(m), 0, False)), m.sum(axis=0))
    a = rng.standard_normal((6, 8, 10))
    view = kt.transpose(kt.getitem(kt.from_host(a), (slice(None), slice(None, None, -3))), (2, 0, 1))
    ref = a[:, ::-3].transpose(2, 0, 1)
    for axis in (None, 0, 1, 2, (0, 2), (1, 2)):
        assert_close(kt.to_host(kt.sum(view, axis, False)), ref.sum(axis=axis))
        assert_close(kt.to_host(kt.max(view, axis, True)), ref.max(axis=axis, keepdims=True))


def test_reductions_are_deterministic(kt, rng):
    a = kt.from_host(rng.standard_normal((4_000_003,)).astype(np.float32))
    first = kt.to_host(kt.sum(a, None, False))
    for _ in range(3):
        assert kt.to_host(kt.sum(a, None, False)).tobytes() == first.tobytes()
    cols = kt.from_host(rng.standard_normal((100_000, 5)).astype(np.float32))
    once = kt.to_host(kt.sum(cols, 0, False))
    assert kt.to_host(kt.sum(cols, 0, False)).tobytes() == once.tobytes()


def test_reduce_axis_errors(kt):
    a = kt.zeros((2, 3), np.float32)
    with pytest.raises(AxisError):
        kt.sum(a, 2, False)
    with pytest.raises(AxisError):
        kt.argmax(a, (0, 1), False)


def test_reshape_views_and_copies(kt, rng):
    a = rng.standard_normal((4, 6, 5))
    da = kt.from_host(a)
    r = kt.reshape(da, (24, -1))
    assert r.buffer is da.buffer
    assert_close(kt.to_host(r), a.reshape(24, -1))
    t = kt.transpose(da, (1, 0, 2))
    assert_close(kt.to_host(kt.reshape(t, (6, 20))), a.transpose(1, 0, 2).reshape(6, 20))
    assert kt.reshape(t, (6, 4, 5, 1)).buffer is da.buffer  # adding a unit dim needs no copy
    assert_close(kt.to_host(kt.reshape(t, (-1,))), a.transpose(1, 0, 2).reshape(-1))
    s = kt.getitem(da, (slice(None), slice(None, None, 2)))
    assert_close(kt.to_host(kt.reshape(s, (12, 5))), a[:, ::2].reshape(12, 5))
    with pytest.raises(ShapeError):
        kt.reshape(da, (7, -1))
    assert_close(kt.to_host(kt.reshape(kt.from_host(np.zeros((0, 3))), (3, 0))), np.zeros((3, 0)))


def test_transpose_broadcast_contiguous(kt, rng):
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    da = kt.from_host(a)
    t = kt.transpose(da, (2, 0, 1))
    assert not t.is_contiguous and t.buffer is da.buffer
    c = kt.ascontiguousarray(t)
    assert c.is_contiguous
    assert_close(kt.to_host(c), np.ascontiguousarray(a.transpose(2, 0, 1)))
    b = kt.broadcast_to(kt.from_host(a[:, :1, :]), (2, 3, 4, 5))
    assert b.strides[0] == 0 and b.strides[2] == 0
    assert_close(kt.to_host(b), np.broadcast_to(a[:, :1, :], (2, 3, 4, 5)))
    with pytest.raises(ShapeError):
        kt.broadcast_to(da, (3, 3, 5))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(kt, rng, axis):
    parts = (
        [rng.standard_normal((3, n, 4)) for n in (1, 0, 5)]
        if axis == 1
        else [rng.standard_normal((3, 2, 4)) for _ in range(3)]
    )
    dev = [kt.from_host(p) for p in parts]
    dev[0] = kt.transpose(
        kt.from_host(np.ascontiguousarray(parts[0].transpose(2, 1, 0))), (2, 1, 0)
    )  # a view
    assert_close(kt.to_host(kt.concatenate(dev, axis)), np.concatenate(parts, axis=axis))
    if axis != 1:
        assert_close(kt.to_host(kt.stack(dev, axis)), np.stack(parts, axis=axis))
    mixed = kt.concatenate([kt.from_host(np.ones((2, 2), np.float32)), kt.from_host(np.zeros((1, 2)))], 0)
    assert mixed.dtype == np.float64
    with pytest.raises(ShapeError):
        kt.concatenate([kt.zeros((2, 2), np.float32), kt.zeros((2, 3), np.float32)], 0)
    with pytest.raises(ShapeError):
        kt.stack([kt.zeros((2, 2), np.float32), kt.zeros((2, 3), np.float32)], 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize(
    "shape_axes",
    [
        ((999, 1000), (1, 0)),
        ((3, 37, 45), (0, 2, 1)),
        ((37, 5, 45), (1, 2, 0)),
        ((64, 8), (1, 0)),
        ((4, 3, 70), (2, 0, 1)),
    ],
    ids=str,
)
def test_transposed_copies(kt, rng, dtype, shape_axes):
    shape, axes = shape_axes
    a = (rng.standard_normal(shape) * 5).astype(dtype)
    t = kt.transpose(kt.from_host(a), axes)
    assert_close(kt.to_host(kt.ascontiguousarray(t)), np.ascontiguousarray(a.transpose(axes)))
    flipped = kt.getitem(t, (Ellipsis, slice(None, None, -1)))
    assert_close(
        kt.to_host(kt.ascontiguousarray(flipped)), np.ascontiguousarray(a.transpose(axes)[..., ::-1])
    )
