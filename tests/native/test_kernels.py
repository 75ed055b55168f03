"""Native CPU kernels against the NumPy reference over a shape matrix (strides, paddings, odd sizes, dilation,
groups, batch 1, non-contiguous inputs, both dtypes); the reference against PyTorch; pinned pooling semantics;
and fuzzed bad geometry that must raise KeyDNN errors, never crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keydnn.domain.errors import KeyDNNError, NativeLibraryError, ShapeError
from keydnn.infrastructure.backends.numpy import conv as rconv
from keydnn.infrastructure.backends.numpy import norm as rnorm
from keydnn.infrastructure.backends.numpy import pool as rpool

native_cpu = pytest.importorskip("keydnn.infrastructure.backends.native_cpu")
try:
    native_cpu.overrides()
except NativeLibraryError:
    pytest.skip("native CPU library not built (python native/build.py)", allow_module_level=True)

from keydnn.infrastructure.backends.native_cpu import conv as nconv  # noqa: E402
from keydnn.infrastructure.backends.native_cpu import norm as nnorm  # noqa: E402
from keydnn.infrastructure.backends.native_cpu import pool as npool  # noqa: E402

DTYPES = (np.float32, np.float64)
TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}

# x shape, w shape, stride, padding, dilation, groups
CONV_CASES = [
    ((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((1, 3, 7, 9), (5, 3, 3, 3), (2, 2), (1, 1), (1, 1), 1),
    ((3, 4, 11, 6), (6, 2, 5, 3), (3, 2), (2, 1), (1, 1), 2),
    ((2, 2, 9, 10), (3, 2, 3, 2), (1, 2), (2, 0), (2, 3), 1),
    ((1, 6, 5, 5), (6, 1, 3, 3), (1, 1), (1, 1), (1, 1), 6),
    ((4, 8, 6, 7), (16, 8, 1, 1), (1, 1), (0, 0), (1, 1), 1),
    ((2, 3, 4, 4), (2, 3, 4, 4), (1, 1), (0, 0), (1, 1), 1),
    ((2, 17, 13, 40), (33, 17, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # edge tiles of the GEMM in every direction
    ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0), (1, 1), 1),
    ((5, 4, 6, 6), (4, 4, 2, 2), (2, 2), (0, 0), (1, 1), 1),
]


def _strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view."""
    big = np.empty(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}*{c[1]}s{c[2]}p{c[3]}d{c[4]}g{c[5]}")
@pytest.mark.parametrize("contiguous", [True, False])
def test_conv2d_native_matches_reference(case, dtype, contiguous):
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    geo = (stride, padding, dilation, groups)
    y = rconv.conv2d_forward(x, w, b, *geo)
    gy = rng.standard_normal(y.shape).astype(dtype)
    if not contiguous:
        x, w, gy = _strided(x), _strided(w), _strided(gy)
    np.testing.assert_allclose(nconv.conv2d_forward(x, w, b, *geo), y, **TOL[dtype])
    np.testing.assert_allclose(
        nconv.conv2d_backward_input(gy, w, x.shape, *geo),
        rconv.conv2d_backward_input(gy, w, x.shape, *geo),
        **TOL[dtype],
    )
    np.testing.assert_allclose(
        nconv.conv2d_backward_weight(gy, x, w.shape, *geo),
        rconv.conv2d_backward_weight(gy, x, w.shape, *geo),
        **TOL[dtype],
    )


@pytest.mark.parametrize("kernels", [rconv, nconv], ids=["numpy", "native"])
def test_conv2d_backward_input_honours_output_padding_shape(kernels):
    """Conv2dTranspose's forward: an x_shape one larger than the minimal one (output_padding) is honoured."""
    rng = np.random.default_rng(1)
    w, gy = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((2, 3, 5, 5))
    gx = kernels.conv2d_backward_input(gy, w, (2, 2, 10, 10), (2, 2), (1, 1), (1, 1), 1)
    assert gx.shape == (2, 2, 10, 10)
    np.testing.assert_allclose(
        gx[:, :, :9, :9], kernels.conv2d_backward_input(gy, w, (2, 2, 9, 9), (2, 2), (1, 1), (1, 1), 1)
    )
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(gy), torch.tensor(w), stride=2, padding=1, output_padding=1
    )
    np.testing.assert_allclose(gx, expected.numpy(), rtol=1e-10, atol=1e-10)


POOL_CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1)),
    ((2, 1, 6, 5), (3, 2), (1, 2), (1, 1)),
    ((1, 2, 5, 5), (3, 3), (1, 1), (0, 0)),
    ((3, 2, 9, 4), (4, 2), (3, 1), (2, 1)),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("contiguous", [True, False])
def test_pooling_native_matches_reference(case, dtype, contiguous):
    xs, k, s, p = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(dtype)
    y, arg = rpool.max_pool2d_forward(x, k, s, p)
    gy = rng.standard_normal(y.shape).astype(dtype)
    if not contiguous:
        x, gy = _strided(x), _strided(gy)
    ny, narg = npool.max_pool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(ny, y)
    np.testing.assert_array_equal(narg, arg)
    np.testing.assert_allclose(
        npool.max_pool2d_backward(gy, arg, xs), rpool.max_pool2d_backward(gy, arg, xs), **TOL[dtype]
    )
    np.testing.assert_allclose(
        npool.avg_pool2d_forward(x, k, s, p), rpool.avg_pool2d_forward(x, k, s, p), **TOL[dtype]
    )
    np.testing.assert_allclose(
        npool.avg_pool2d_backward(gy, xs, k, s, p), rpool.avg_pool2d_backward(gy, xs, k, s, p), **TOL[dtype]
    )


@pytest.mark.parametrize("kernels", [rpool, npool], ids=["numpy", "native"])
def test_max_pool_ties_pick_first_and_padding_is_never_chosen(kernels):
    x = np.array([[[[1.0, 1.0], [1.0, 1.0]]]])
    y, arg = kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert y.item() == 1.0 and arg.item() == 0  # first maximum in row-major window order
    x = np.full((1, 1, 2, 2), -np.inf)
    x[0, 0, 1, 1] = -5.0
    y, arg = kernels.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1))
    assert y[0, 0, 0, 0] == -5.0 and arg[0, 0, 0, 0] == 3
    y, arg = kernels.max_pool2d_forward(np.full((1, 1, 2, 2), -np.inf), (3, 3), (1, 1), (1, 1))
    assert np.all(y == -np.inf) and arg.min() >= 0 and arg.max() < 4  # all -inf: still a real cell
    x = np.array([[[[1.0, np.nan], [np.nan, 3.0]]]])
    y, arg = kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(y.item()) and arg.item() == 1  # NaN propagates, first NaN wins


@pytest.mark.parametrize("kernels", [rpool, npool], ids=["numpy", "native"])
def test_avg_pool_counts_padding_as_zero_with_full_divisor(kernels):
    y = kernels.avg_pool2d_forward(np.ones((1, 1, 2, 2)), (3, 3), (1, 1), (1, 1))
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 4.0 / 9.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 7), (3, 4, 5, 6), (1, 2, 1, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_native_matches_reference(shape, dtype, affine):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    b = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    ref, nat = rnorm.batch_norm_forward(x, g, b, 1e-5), nnorm.batch_norm_forward(_strided(x), g, b, 1e-5)
    for r, n in zip(ref, nat, strict=True):
        np.testing.assert_allclose(n, r, **TOL[dtype])
    rb, nb = rnorm.batch_norm_backward(gy, x, g, *ref[1:]), nnorm.batch_norm_backward(gy, x, g, *ref[1:])
    for r, n in zip(rb, nb, strict=True):
        assert (r is None) == (n is None)
        if r is not None:
            np.testing.assert_allclose(n, r, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,n_axes", [((4, 6), 1), ((2, 3, 4, 5), 2), ((3, 700), 1), ((5,), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_native_matches_reference(shape, n_axes, dtype, affine):
    rng = np.random.default_rng(4)
    x, gy = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    pshape = shape[len(shape) - n_axes :]
    g = rng.standard_normal(pshape).astype(dtype) if affine else None
    b = rng.standard_normal(pshape).astype(dtype) if affine else None
    ref, nat = (
        rnorm.layer_norm_forward(x, g, b, n_axes, 1e-5),
        nnorm.layer_norm_forward(x, g, b, n_axes, 1e-5),
    )
    for r, n in zip(ref, nat, strict=True):
        np.testing.assert_allclose(n, r, **TOL[dtype])
    rb = rnorm.layer_norm_backward(gy, x, g, *ref[1:], n_axes)
    nb = nnorm.layer_norm_backward(_strided(gy), x, g, *ref[1:], n_axes)
    for r, n in zip(rb, nb, strict=True):
        assert (r is None) == (n is None)
        if r is not None:
            np.testing.assert_allclose(n, r, **TOL[dtype])


def test_native_kernels_fall_back_for_other_float_dtypes():
    x, w = np.ones((1, 2, 4, 4), np.float16), np.ones((3, 2, 3, 3), np.float16)
    y = nconv.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    assert y.dtype == np.float16 and y[0, 0, 1, 1] == 18.0


def test_max_pool_backward_rejects_out_of_range_argmax():
    with pytest.raises(KeyDNNError):
        npool.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 99, np.int64), (1, 1, 4, 4))


def test_library_info_names_build_and_threads():
    info = native_cpu.library_info()
    assert info["path"].endswith("libkeydnn_cpu.so") and info["omp_max_threads"] >= 1
    assert "-O3" in info["flags"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    for xs, ws, stride, padding, dilation, groups in CONV_CASES:
        x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        ty = F.conv2d(tx, tw, None, stride, padding, dilation, groups)
        gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
        ty.backward(torch.tensor(gy))
        geo = (stride, padding, dilation, groups)
        np.testing.assert_allclose(rconv.conv2d_forward(x, w, None, *geo), ty.detach().numpy(), **TOL[dtype])
        np.testing.assert_allclose(
            rconv.conv2d_backward_input(gy, w, xs, *geo), tx.grad.numpy(), **TOL[dtype]
        )
        np.testing.assert_allclose(
            rconv.conv2d_backward_weight(gy, x, ws, *geo), tw.grad.numpy(), **TOL[dtype]
        )
    for xs, k, s, p in POOL_CASES:
        x = rng.standard_normal(xs).astype(dtype)
        ty, targ = F.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
        y, arg = rpool.max_pool2d_forward(x, k, s, p)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(arg, targ.numpy())
        np.testing.assert_allclose(
            rpool.avg_pool2d_forward(x, k, s, p),
            F.avg_pool2d(torch.tensor(x), k, s, p, count_include_pad=True).numpy(),
            **TOL[dtype],
        )


# ---- fuzzing: any geometry either works or raises a KeyDNN error before a native call --------------------
small = st.integers(min_value=-2, max_value=6)


@settings(max_examples=150, deadline=None)
@given(
    x=st.lists(small, min_size=3, max_size=5),
    w=st.lists(small, min_size=3, max_size=5),
    stride=st.tuples(small, small),
    padding=st.tuples(small, small),
    dilation=st.tuples(small, small),
    groups=st.integers(min_value=-1, max_value=4),
)
def test_conv_geometry_fuzz_never_crashes(x, w, stride, padding, dilation, groups):
    try:
        xs, ws = tuple(max(v, 0) for v in x), tuple(max(v, 0) for v in w)
        xa, wa = np.ones(xs, np.float32), np.ones(ws, np.float32)
    except ValueError:
        return
    geo = (stride, padding, dilation, groups)
    for call in (
        lambda: nconv.conv2d_forward(xa, wa, None, *geo),
        lambda: nconv.conv2d_backward_input(np.ones((1,) * 4, np.float32), wa, xs, *geo),
        lambda: nconv.conv2d_backward_weight(np.ones((1,) * 4, np.float32), xa, ws, *geo),
    ):
        try:
            call()
        except ShapeError:
            pass


@settings(max_examples=150, deadline=None)
@given(
    x=st.lists(small, min_size=3, max_size=5),
    kernel=st.tuples(small, small),
    stride=st.tuples(small, small),
    padding=st.tuples(small, small),
    gy=st.lists(small, min_size=4, max_size=4),
)
def test_pool_geometry_fuzz_never_crashes(x, kernel, stride, padding, gy):
    xs = tuple(max(v, 0) for v in x)
    xa = np.ones(xs, np.float64)
    gya = np.ones(tuple(max(v, 0) for v in gy), np.float64)
    for call in (
        lambda: npool.max_pool2d_forward(xa, kernel, stride, padding),
        lambda: npool.avg_pool2d_forward(xa, kernel, stride, padding),
        lambda: npool.avg_pool2d_backward(gya, xs, kernel, stride, padding),
        lambda: npool.max_pool2d_backward(gya, np.zeros(gya.shape, np.int64), xs),
    ):
        try:
            call()
        except ShapeError:
            pass


def test_the_native_tables_composite_kernels_run_over_the_native_kernels(monkeypatch):
    """Composite kernels the native library does not replace must run over the native table (bound over the
    NumPy table, the whole-sequence GRU would call NumPy's kernels, and an LSTM sequence once never reached
    the fused native gates)."""
    from keydnn.infrastructure.backends import composite, native_table

    native = native_table()
    for name in composite.COMPOSITE:
        if name in native.native_kernels:
            continue
        kernel = getattr(native, name)
        assert kernel.args[0] is native, name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("states", [True, False])
def test_native_lstm_sequence_matches_the_composite(dtype, reverse, states):
    """The whole recurrence in one native call (its GEMMs through NumPy's OpenBLAS) against the composite loop
    over NumPy's kernels: outputs and every gradient, both directions, with and without initial states."""
    from keydnn.infrastructure.backends import native_table, numpy_table
    from keydnn.infrastructure.backends.native_cpu import _lib as native_lib

    if native_lib.gemm_library() is None:
        pytest.skip("NumPy is not on OpenBLAS: the native LSTM sequence runs the composite")
    native, ref = native_table(), numpy_table()
    rng = np.random.default_rng(11)
    t, n, d, h = 9, 4, 5, 6
    shapes = [(t, n, d), (n, h), (n, h), (d, 4 * h), (h, 4 * h), (4 * h,), (4 * h,)]
    args = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if not states:
        args[1] = args[2] = None
    out, saved = native.lstm_sequence_forward(*args, reverse)
    assert saved[0] == "native-lstm-sequence"
    want, saved_ref = ref.lstm_sequence_forward(*args, reverse)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(out, want, **tol)
    g = rng.standard_normal(out.shape).astype(dtype)
    for got, exp in zip(native.lstm_sequence_backward(saved, g), ref.lstm_sequence_backward(saved_ref, g),
                        strict=True):
        if exp is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, exp, **tol)
