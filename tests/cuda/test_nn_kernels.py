"""CUDA fused nn kernels against the NumPy reference backend: softmax/log_softmax over any axis, softmax
cross-entropy, max/avg pooling, layer norm; plus Philox random arrays and the fused optimizer steps."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.domain.errors import DTypeError, KeyDNNError, ShapeError
from keydnn.infrastructure.backends import numpy as numpy_backend
from tests.cuda.cuda_helpers import assert_close

pytestmark = pytest.mark.cuda
FLOATS = [np.float32, np.float64]
REF = numpy_backend.table()


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "shape_axis",
    [
        ((5,), 0),
        ((4, 10), 1),
        ((4, 10), 0),
        ((3, 4, 5), 1),
        ((2, 3000), 1),
        ((1, 1), 1),
        ((6, 0), 1),
        ((7, 33, 2), -1),
    ],
    ids=str,
)
def test_softmax_and_log_softmax(kt, rng, shape_axis, dtype):
    shape, axis = shape_axis
    a = (rng.standard_normal(shape) * 5).astype(dtype)
    da = kt.from_host(a)
    if a.size == 0:  # the NumPy reference cannot take the max of an empty axis; the result is just empty
        assert kt.to_host(kt.softmax(da, axis)).shape == shape
        return
    assert_close(kt.to_host(kt.softmax(da, axis)), REF.softmax(a, axis % len(shape)), **_tol(dtype))
    assert_close(kt.to_host(kt.log_softmax(da, axis)), REF.log_softmax(a, axis % len(shape)), **_tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "shape_axis", [((5,), 0), ((4, 10), 1), ((4, 10), 0), ((3, 4, 5), 1), ((2, 3000), 1), ((7, 33, 2), -1),
                   ((6, 0), 1)], ids=str)
def test_fused_softmax_backward_matches_the_composite_formula(kt, rng, shape_axis, dtype):
    """The fused CUDA kernels (a warp or a block per row, a thread per column) against the NumPy table's
    composite y * (g - sum(g * y)) and g - exp(y) * sum(g); g also as a transposed view."""
    shape, axis = shape_axis
    axis %= len(shape)
    a = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for fwd, bwd in (("softmax", "softmax_backward"), ("log_softmax", "log_softmax_backward")):
        y = getattr(REF, fwd)(a, axis) if a.size else a
        want = getattr(REF, bwd)(y, g, axis)
        got = getattr(kt, bwd)(kt.from_host(y), kt.from_host(g), axis)
        assert_close(kt.to_host(got), want, **_tol(dtype))
    if len(shape) == 2 and a.size:
        y = REF.softmax(a, axis)
        g_t = kt.transpose(kt.from_host(np.ascontiguousarray(g.T)), (1, 0))  # same values, strided
        assert_close(kt.to_host(kt.softmax_backward(kt.from_host(y), g_t, axis)),
                     REF.softmax_backward(y, g, axis), **_tol(dtype))
        row = g[:1]  # a gradient that broadcasts, as the composite formula allows
        assert_close(kt.to_host(kt.softmax_backward(kt.from_host(y), kt.from_host(row), axis)),
                     REF.softmax_backward(y, np.broadcast_to(row, shape), axis), **_tol(dtype))
    with pytest.raises(ShapeError):
        kt.softmax_backward(kt.from_host(a), kt.from_host(np.zeros((1, 7), dtype)), 0)


def test_softmax_large_logits_and_views(kt, rng):
    a = np.array([[1000.0, 1001.0, -1000.0], [-np.inf, 0.0, 1.0]], np.float32)
    assert_close(kt.to_host(kt.softmax(kt.from_host(a), 1)), REF.softmax(a, 1), rtol=1e-5, atol=1e-7)
    b = rng.standard_normal((8, 6))
    view = kt.transpose(kt.from_host(b), (1, 0))
    assert_close(kt.to_host(kt.softmax(view, 1)), REF.softmax(b.T, 1))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n_c", [(1, 1), (7, 10), (64, 1000), (3, 5000)], ids=str)
def test_softmax_xent(kt, rng, n_c, dtype):
    n, c = n_c
    logits = (rng.standard_normal((n, c)) * 3).astype(dtype)
    labels = rng.integers(0, c, n)
    loss, probs = kt.softmax_xent_forward(kt.from_host(logits), kt.from_host(labels))
    ref_loss, ref_probs = REF.softmax_xent_forward(logits, labels)
    assert_close(kt.to_host(loss), ref_loss, **_tol(dtype))
    assert_close(kt.to_host(probs), ref_probs, **_tol(dtype))
    g = rng.standard_normal(n).astype(dtype)
    d = kt.softmax_xent_backward(probs, kt.from_host(labels), kt.from_host(g))
    assert_close(kt.to_host(d), REF.softmax_xent_backward(ref_probs, labels, g), **_tol(dtype))


def test_softmax_xent_bad_label_raises_at_the_next_synchronisation(kt):
    from keydnn.infrastructure.backends import cuda
    from keydnn.infrastructure.backends.cuda import faults

    logits = kt.from_host(np.zeros((4, 3), np.float32))
    loss, _ = kt.softmax_xent_forward(logits, kt.from_host(np.array([0, 1, 5, 2])))  # no read-back: no raise
    later, _ = kt.softmax_xent_forward(logits, kt.from_host(np.array([-1, 0, 0, 0])))
    with pytest.raises(ShapeError, match=r"labels must be in \[0, 3\), got 5 at row 2") as info:
        kt.to_host(later)  # any read-back reports the first failing call, not the one read
    assert "device=cuda:0" in str(info.value) and "shape=(4, 3)" in str(info.value)
    assert np.isnan(kt.to_host(loss)[2]) and np.isfinite(kt.to_host(loss)[[0, 1, 3]]).all()
    # the record was cleared with the report: the device and the op stay usable
    good, _ = kt.softmax_xent_forward(logits, kt.from_host(np.array([2, 1, 0, 2])))
    assert_close(kt.to_host(good), np.full(4, np.log(3.0), np.float32), rtol=1e-6)
    kt.softmax_xent_forward(logits, kt.from_host(np.array([0, 0, 0, 3])))
    with pytest.raises(ShapeError, match=r"got 3 at row 3"):
        cuda.synchronize(0)
    assert not faults._faults[0].pending


def test_faults_forget_the_oldest_tickets_without_a_synchronisation(kt):
    from keydnn.infrastructure.backends.cuda import faults

    logits, labels = kt.from_host(np.zeros((2, 3), np.float32)), kt.from_host(np.array([0, 1]))
    for _ in range(faults.MAX_PENDING + 10):
        kt.softmax_xent_forward(logits, labels)
    assert len(faults._faults[0].pending) <= faults.MAX_PENDING
    kt.to_host(labels)
    assert not faults._faults[0].pending
    # a failing call whose description was forgotten is still reported, as a device-side check
    kt.softmax_xent_forward(logits, kt.from_host(np.array([0, 7])))
    for _ in range(faults.MAX_PENDING):
        kt.softmax_xent_forward(logits, labels)
    with pytest.raises(KeyDNNError, match=r"device-side check failed .* element 1, value 7"):
        kt.to_host(labels)


POOLS = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1)),
    ((2, 1, 5, 6), (3, 2), (1, 1), (1, 0)),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0)),
    ((3, 4, 13, 11), (4, 3), (3, 2), (2, 1)),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("cfg", POOLS, ids=str)
def test_max_pool(kt, rng, cfg, dtype):
    shape, k, s, p = cfg
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)  # ties: the first max must win
    y, idx = kt.max_pool2d_forward(kt.from_host(x), k, s, p)
    ry, ridx = REF.max_pool2d_forward(x, k, s, p)
    assert_close(kt.to_host(y), ry)
    assert_close(kt.to_host(idx), ridx)
    gy = rng.standard_normal(ry.shape).astype(dtype)
    gx = kt.max_pool2d_backward(kt.from_host(gy), idx, shape)
    assert_close(kt.to_host(gx), REF.max_pool2d_backward(gy, ridx, shape), **_tol(dtype))


def test_max_pool_nan_wins(kt):
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], np.float32)
    y, idx = kt.max_pool2d_forward(kt.from_host(x), (2, 2), (2, 2), (0, 0))
    assert np.isnan(kt.to_host(y)).all() and kt.to_host(idx).item() == 1


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("cfg", POOLS, ids=str)
def test_avg_pool(kt, rng, cfg, dtype):
    shape, k, s, p = cfg
    x = rng.standard_normal(shape).astype(dtype)
    assert_close(
        kt.to_host(kt.avg_pool2d_forward(kt.from_host(x), k, s, p)),
        REF.avg_pool2d_forward(x, k, s, p),
        **_tol(dtype),
    )
    gy = rng.standard_normal(REF.avg_pool2d_forward(x, k, s, p).shape).astype(dtype)
    assert_close(
        kt.to_host(kt.avg_pool2d_backward(kt.from_host(gy), shape, k, s, p)),
        REF.avg_pool2d_backward(gy, shape, k, s, p),
        **_tol(dtype),
    )


def test_pool_errors(kt):
    with pytest.raises(ShapeError):
        kt.max_pool2d_forward(kt.zeros((2, 3, 4), np.float32), (2, 2), (2, 2), (0, 0))
    with pytest.raises(DTypeError):
        kt.avg_pool2d_forward(kt.zeros((1, 1, 4, 4), np.int64), (2, 2), (2, 2), (0, 0))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "shape_n",
    [((4, 10), 1), ((2, 3, 8), 2), ((300, 64), 1), ((3, 2000), 1), ((5, 1), 1), ((1000, 48), 1)],
    ids=str,
)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(kt, rng, shape_n, dtype, affine):
    shape, n_axes = shape_n
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    tail = shape[len(shape) - n_axes :]
    gamma = rng.standard_normal(tail).astype(dtype) if affine else None
    beta = rng.standard_normal(tail).astype(dtype) if affine else None
    dev = lambda v: None if v is None else kt.from_host(v)
    y, mean, invstd = kt.layer_norm_forward(kt.from_host(x), dev(gamma), dev(beta), n_axes, 1e-5)
    ry, rmean, rinv = REF.layer_norm_forward(x, gamma, beta, n_axes, 1e-5)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for got, ref in ((y, ry), (mean, rmean), (invstd, rinv)):
        assert_close(kt.to_host(got), ref, **tol)
    gy = rng.standard_normal(shape).astype(dtype)
    gx, gg, gb = kt.layer_norm_backward(kt.from_host(gy), kt.from_host(x), dev(gamma), mean, invstd, n_axes)
    rgx, rgg, rgb = REF.layer_norm_backward(gy, x, gamma, rmean, rinv, n_axes)
    assert_close(kt.to_host(gx), rgx, **tol)
    if affine:
        assert_close(kt.to_host(gg), rgg, **tol)
        assert_close(kt.to_host(gb), rgb, **tol)
    else:
        assert gg is None and gb is None


@pytest.mark.parametrize("dtype", FLOATS)
def test_random_statistics_and_determinism(kt, dtype):
    n = 1_000_003
    u = kt.to_host(kt.uniform((n,), -2.0, 3.0, dtype, 7))
    assert u.dtype == dtype and u.min() >= -2.0 and u.max() < 3.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 25 / 12) < 0.02
    assert np.array_equal(u, kt.to_host(kt.uniform((n,), -2.0, 3.0, dtype, 7)))
    assert not np.array_equal(u, kt.to_host(kt.uniform((n,), -2.0, 3.0, dtype, 8)))
    z = kt.to_host(kt.normal((1000, 1001), 1.5, 2.0, dtype, 3))
    assert abs(z.mean() - 1.5) < 0.01 and abs(z.std() - 2.0) < 0.01
    assert abs(((z - 1.5) / 2) ** 3).mean() < 2 and abs(np.mean(((z - 1.5) / 2) ** 4) - 3) < 0.05
    m = kt.to_host(kt.dropout_mask((n,), 0.3, dtype, 11))
    assert set(np.unique(m)) <= {0.0, dtype(1 / 0.7)}
    assert abs((m == 0).mean() - 0.3) < 0.005
    assert (kt.to_host(kt.dropout_mask((9,), 1.0, dtype, 1)) == 0).all()
    assert (kt.to_host(kt.dropout_mask((9,), 0.0, dtype, 1)) == 1).all()
    # element i depends on (seed, i) only: a longer draw starts with the shorter one
    assert np.array_equal(
        kt.to_host(kt.uniform((10,), 0.0, 1.0, dtype, 5)),
        kt.to_host(kt.uniform((100,), 0.0, 1.0, dtype, 5))[:10],
    )


def _params(rng, dtype, count=60):
    shapes = [(int(rng.integers(1, 300)),) if i % 3 else (7, int(rng.integers(1, 50))) for i in range(count)]
    shapes[0] = (70_001,)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "cfg",
    [(0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-2), (0.9, 0.1, True, 0.0), (0.5, 0.3, False, 0.05)],
    ids=str,
)
def test_sgd_step_multi_tensor(kt, rng, dtype, cfg):
    momentum, dampening, nesterov, wd = cfg
    params, grads = _params(rng, dtype), _params(rng, dtype)
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    bufs = [np.zeros_like(p) for p in params]
    dp, dg, db = ([kt.from_host(x) for x in xs] for xs in (params, grads, bufs))
    for _ in range(3):
        kt.sgd_step(dp, dg, db, 0.1, momentum, dampening, nesterov, wd)
        REF.sgd_step(params, grads, bufs, 0.1, momentum, dampening, nesterov, wd)
    for got, ref in zip(dp + db, params + bufs, strict=True):
        assert_close(kt.to_host(got), ref, **_tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("wd_decoupled", [(0.0, False), (0.01, False), (0.01, True)], ids=str)
def test_adam_step_multi_tensor(kt, rng, dtype, wd_decoupled):
    wd, decoupled = wd_decoupled
    params = _params(rng, dtype)
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    dp, dg, dm, dv = ([kt.from_host(x) for x in xs] for xs in (params, grads, m, v))
    for step in range(1, 4):
        kt.adam_step(dp, dg, dm, dv, step, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled)
        REF.adam_step(params, grads, m, v, step, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, ref in zip(dp + dm + dv, params + m + v, strict=True):
        assert_close(kt.to_host(got), ref, **tol)
