"""CUDA elementwise kernels against NumPy: broadcasting, strided views, scalars on either side, out=,
promotion, size 0/1/odd sizes, both float dtypes, int64/bool where NumPy allows them."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.domain.errors import DeviceNotSupportedError, DTypeError, ShapeError
from tests.cuda.cuda_helpers import assert_close

pytestmark = pytest.mark.cuda

FLOATS = [np.float32, np.float64]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum"]
COMPARE = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]
SHAPE_PAIRS = [
    ((), ()),
    ((1,), (1,)),
    ((0,), (0,)),
    ((7,), (7,)),
    ((1027,), (1027,)),
    ((3, 1), (1, 5)),
    ((4, 5, 6), (6,)),
    ((2, 1, 4), (3, 1)),
    ((5, 0), (1, 0)),
    ((2, 3, 4, 5), (2, 1, 4, 1)),
    ((64, 33), (64, 33)),
]


def _data(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) > 0.5
    return rng.integers(-50, 50, shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_binary_broadcast(kt, rng, name, dtype, shapes):
    a, b = _data(rng, shapes[0], dtype), _data(rng, shapes[1], dtype)
    if name == "divide":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(dtype)
    got = kt.to_host(getattr(kt, name)(kt.from_host(a), kt.from_host(b)))
    assert_close(got, getattr(np, name)(a, b))


@pytest.mark.parametrize("dtype", FLOATS)
def test_power_negative_bases(kt, rng, dtype):
    a = _data(rng, (100,), dtype)
    b = rng.integers(-3, 4, (100,)).astype(dtype)
    assert_close(kt.to_host(kt.power(kt.from_host(a), kt.from_host(b))), np.power(a, b), rtol=1e-5)
    assert_close(kt.to_host(kt.power(kt.from_host(a), 2)), a**2, rtol=1e-5)
    pos = np.abs(a) + 0.5
    assert_close(kt.to_host(kt.power(2.0, kt.from_host(pos))), np.power(2.0, pos).astype(dtype), rtol=1e-5)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "maximum", "minimum", "power"])
def test_int64_arithmetic(kt, rng, name):
    a = rng.integers(-9, 9, (5, 6))
    b = rng.integers(0, 4, (6,))
    got = kt.to_host(getattr(kt, name)(kt.from_host(a), kt.from_host(b)))
    assert_close(got, getattr(np, name)(a, b))


def test_int_true_divide_gives_float64(kt):
    a, b = np.arange(1, 7), np.array([2, 4, 8, 3, 5, 7])
    assert_close(kt.to_host(kt.divide(kt.from_host(a), kt.from_host(b))), a / b)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", BINARY + ["power"])
def test_scalar_on_either_side(kt, rng, name, dtype):
    a = (np.abs(_data(rng, (9, 17), dtype)) + 0.5).astype(dtype)
    da = kt.from_host(a)
    fn, ref = getattr(kt, name), getattr(np, name)
    for s in (2.5, 3, -1.25):
        if name == "power" and s == -1.25:
            continue
        assert_close(kt.to_host(fn(da, s)), ref(a, s), rtol=1e-5)
        if name != "power":
            assert_close(kt.to_host(fn(s, da)), ref(s, a), rtol=1e-5)


@pytest.mark.parametrize("name", COMPARE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_compare(kt, rng, name, dtype):
    a, b = _data(rng, (6, 7), dtype), _data(rng, (7,), dtype)
    b[::2] = a[0, ::2]  # some ties
    fn, ref = getattr(kt, name), getattr(np, name)
    assert_close(kt.to_host(fn(kt.from_host(a), kt.from_host(b))), ref(a, b))
    s = a.flat[3].item()
    assert_close(kt.to_host(fn(kt.from_host(a), s)), ref(a, s))
    assert_close(kt.to_host(fn(s, kt.from_host(a))), ref(s, a))


def test_mixed_dtypes_promote(kt, rng):
    a32, a64 = _data(rng, (4, 5), np.float32), _data(rng, (5,), np.float64)
    assert_close(kt.to_host(kt.add(kt.from_host(a32), kt.from_host(a64))), a32 + a64)
    ints = rng.integers(0, 5, (4, 5))
    assert_close(kt.to_host(kt.multiply(kt.from_host(ints), kt.from_host(a32))), ints * a32)
    assert_close(kt.to_host(kt.add(kt.from_host(ints), 0.5)), ints + 0.5)
    assert_close(kt.to_host(kt.add(kt.from_host(a32), 1)), a32 + 1)


@pytest.mark.parametrize("dtype", FLOATS)
def test_strided_views(kt, rng, dtype):
    a = _data(rng, (8, 12, 5), dtype)
    b = _data(rng, (12, 8), dtype)
    da, db = kt.from_host(a), kt.from_host(b)
    va = kt.getitem(da, (slice(None, None, -2), slice(1, None, 3), 2))  # (4, 4), negative and odd strides
    vb = kt.transpose(kt.getitem(db, (slice(1, None, 3), slice(None, None, 2))), (1, 0))
    ra, rb = a[::-2, 1::3, 2], b[1::3, ::2].T
    assert_close(kt.to_host(kt.add(va, vb)), ra + rb)
    assert_close(kt.to_host(kt.multiply(va, 3.0)), ra * 3.0)
    assert_close(kt.to_host(kt.exp(va)), np.exp(ra), rtol=1e-5)
    bc = kt.broadcast_to(kt.from_host(a[0, 0, :4]), (3, 4))
    assert_close(
        kt.to_host(kt.subtract(bc, kt.getitem(va, (slice(0, 3),)))),
        np.broadcast_to(a[0, 0, :4], (3, 4)) - ra[:3],
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_out_in_place(kt, rng, dtype):
    a, b = _data(rng, (33, 9), dtype), _data(rng, (9,), dtype)
    da = kt.from_host(a)
    res = kt.add(da, kt.from_host(b), out=da)
    assert res is da
    assert_close(kt.to_host(da), a + b)
    kt.multiply(da, 0.5, out=da)
    assert_close(kt.to_host(da), (a + b) * dtype(0.5))
    view = kt.getitem(da, (slice(None), slice(None, None, 2)))  # non-contiguous out=
    kt.subtract(view, 1.0, out=view)
    ref = (a + b) * dtype(0.5)
    ref[:, ::2] -= 1
    assert_close(kt.to_host(da), ref)
    with pytest.raises(ShapeError):
        kt.add(da, da, out=kt.empty((2, 2), dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["negative", "exp", "log", "sqrt", "tanh", "sigmoid", "abs", "sign", "relu"])
def test_unary(kt, rng, name, dtype):
    a = _data(rng, (513,), dtype) * 4
    if name in ("log", "sqrt"):
        a = np.abs(a) + dtype(1e-3)
    a[:3] = [0.0, -0.0, 1.0]
    ref = {"relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-x))}.get(
        name
    ) or getattr(np, name)
    got = kt.to_host(getattr(kt, name)(kt.from_host(a)))
    assert_close(got, ref(a).astype(dtype), rtol=2e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    view = kt.getitem(kt.from_host(a), (slice(None, None, 3),))
    assert_close(kt.to_host(getattr(kt, name)(view)), ref(a[::3]).astype(dtype), rtol=2e-5, atol=1e-6)


def test_sigmoid_extremes_and_nan(kt):
    a = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0, np.nan], np.float32)
    got = kt.to_host(kt.sigmoid(kt.from_host(a)))
    assert np.all(np.isfinite(got[:5]))
    assert_close(got[:5], np.array([0.0, 1.9287499e-22, 0.5, 1.0, 1.0], np.float32), rtol=1e-5, atol=1e-30)
    assert np.isnan(got[5])
    nan = np.array([np.nan, 1.0], np.float64)
    assert np.isnan(kt.to_host(kt.maximum(kt.from_host(nan), 0.0))[0])
    assert np.isnan(kt.to_host(kt.relu(kt.from_host(nan)))[0])


@pytest.mark.parametrize("name", ["negative", "abs", "sign", "relu"])
def test_unary_int64(kt, rng, name):
    a = rng.integers(-5, 5, (40,))
    ref = np.maximum(a, 0) if name == "relu" else getattr(np, name)(a)
    assert_close(kt.to_host(getattr(kt, name)(kt.from_host(a))), ref)


@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_backward(kt, rng, dtype):
    g, y = _data(rng, (7, 11), dtype), np.maximum(_data(rng, (7, 11), dtype), 0)
    assert_close(kt.to_host(kt.relu_backward(kt.from_host(g), kt.from_host(y))), g * (y > 0))


@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_clip(kt, rng, dtype):
    a = _data(rng, (10, 10), dtype)
    for lo, hi in [(-0.5, 0.5), (None, 0), (0, None), (1, -1)]:
        if np.dtype(dtype).kind == "i" and isinstance(lo, float):
            lo, hi = -3, 3
        assert_close(kt.to_host(kt.clip(kt.from_host(a), lo, hi)), np.clip(a, lo, hi))


@pytest.mark.parametrize("dtype", FLOATS + [np.int64, np.bool_])
def test_where(kt, rng, dtype):
    cond = rng.random((4, 1, 6)) > 0.4
    a, b = _data(rng, (5, 6), dtype), _data(rng, (6,), dtype)
    dc, da, db = kt.from_host(cond), kt.from_host(a), kt.from_host(b)
    assert_close(kt.to_host(kt.where(dc, da, db)), np.where(cond, a, b))
    s = a.flat[0].item()
    assert_close(kt.to_host(kt.where(dc, da, s)), np.where(cond, a, s))
    assert_close(kt.to_host(kt.where(dc, s, db)), np.where(cond, s, b))
    if dtype == np.float32:
        assert_close(kt.to_host(kt.where(dc, 1.5, 0)), np.where(cond, 1.5, 0))


@pytest.mark.parametrize("src", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("dst", [np.float32, np.float64, np.int64, np.bool_])
def test_astype_all_pairs(kt, rng, src, dst):
    a = _data(rng, (3, 7), src)
    if np.dtype(src).kind == "f":
        a[0, :3] = [0.0, -2.7, 3.9]
    assert_close(kt.to_host(kt.astype(kt.from_host(a), dst)), a.astype(dst))
    view = kt.transpose(kt.from_host(a), (1, 0))
    assert_close(kt.to_host(kt.astype(view, dst)), a.T.astype(dst))


def test_copyto_broadcast_cast_scalar_and_overlap(kt, rng):
    dst = kt.zeros((4, 6), np.float32)
    src = rng.integers(-3, 3, (6,))
    kt.copyto(dst, kt.from_host(src))
    assert_close(kt.to_host(dst), np.broadcast_to(src, (4, 6)).astype(np.float32))
    view = kt.getitem(dst, (slice(None), slice(None, None, 2)))
    kt.copyto(view, 7.5)
    ref = np.broadcast_to(src, (4, 6)).astype(np.float32).copy()
    ref[:, ::2] = 7.5
    assert_close(kt.to_host(dst), ref)
    a = np.arange(10.0)
    da = kt.from_host(a)
    kt.copyto(kt.getitem(da, (slice(1, None),)), kt.getitem(da, (slice(None, -1),)))  # overlapping views
    b = a.copy()
    b[1:] = a[:-1]
    assert_close(kt.to_host(da), b)


def test_large_contiguous_add(kt, rng):
    a, b = (
        rng.standard_normal(3_000_001).astype(np.float32),
        rng.standard_normal(3_000_001).astype(np.float32),
    )
    assert_close(kt.to_host(kt.add(kt.from_host(a), kt.from_host(b))), a + b)
    # a misaligned (odd-offset) contiguous view takes the unvectorised path
    va = kt.getitem(kt.from_host(a), (slice(1, None),))
    vb = kt.getitem(kt.from_host(b), (slice(None, -1),))
    assert_close(kt.to_host(kt.add(va, vb)), a[1:] + b[:-1])


def test_errors(kt):
    a = kt.zeros((3, 4), np.float32)
    with pytest.raises(ShapeError):
        kt.add(a, kt.zeros((5,), np.float32))
    with pytest.raises(DTypeError):
        kt.add(kt.zeros((2,), np.bool_), kt.zeros((2,), np.bool_))
    with pytest.raises(DTypeError):
        kt.add(a, "x")
    with pytest.raises(DTypeError):
        kt.from_host(np.zeros(3, np.int32))
    with pytest.raises(DeviceNotSupportedError):
        from keydnn.infrastructure.backends import cuda

        cuda.table(cuda.device_count() + 3)


@pytest.mark.parametrize("op", ["subtract", "divide", "power"])
def test_scalar_left_of_a_strided_view(kt, op):
    """``1.0 - v`` for a column slice ``v``: the kernel reads the array as its right operand, whose strides
    were once left unset (every element read the first one); the GRU backward pass found it."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, (3, 12))
    view = kt.getitem(kt.from_host(a), (slice(None), slice(4, 8)))
    got = kt.to_host(getattr(kt, op)(1.5, view))
    np.testing.assert_allclose(got, getattr(np, op)(1.5, a[:, 4:8]), rtol=1e-12)
