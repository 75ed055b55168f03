"""cuBLAS matmul kernel: NumPy float64 and torch parity over shapes, views, batching and dtypes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.backends.cuda import _cudart, blas, storage

REQUIRE = os.environ.get("KEYDNN_REQUIRE_CUDA") == "1"
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not _cudart.is_available() and not REQUIRE,
                                 reason=f"CUDA unavailable: {_cudart.unavailable_reason()}")]
TOL = {np.float32: 2e-6, np.float64: 1e-13}  # relative Frobenius error against a float64 product


def to_device(a: np.ndarray) -> storage.CudaArray:
    a = np.ascontiguousarray(a)
    out = storage.empty(a.shape, a.dtype, 0)
    _cudart.memcpy(out.ptr, a.ctypes.data, a.nbytes, _cudart.MEMCPY_H2D)
    return out


def to_host(x: storage.CudaArray) -> np.ndarray:
    assert x.is_contiguous
    out = np.empty(x.shape, x.dtype)
    _cudart.memcpy(out.ctypes.data, x.ptr, x.nbytes, _cudart.MEMCPY_D2H)
    return out


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-300))


def check(a_host: np.ndarray, b_host: np.ndarray, a: storage.CudaArray, b: storage.CudaArray, dtype) -> None:
    y = blas.matmul(a, b)
    ref = a_host.astype(np.float64) @ b_host.astype(np.float64)
    assert y.shape == ref.shape and y.dtype == np.dtype(dtype)
    assert rel_err(to_host(y), ref) < TOL[dtype]


def transposed_view(host_t: np.ndarray) -> storage.CudaArray:
    """Upload ``host_t`` (..., k, m) and return the device view (..., m, k) with the last two axes swapped."""
    d = to_device(host_t)
    strides = list(d.strides)
    strides[-1], strides[-2] = strides[-2], strides[-1]
    shape = d.shape[:-2] + (d.shape[-1], d.shape[-2])
    return d.view(shape, tuple(strides), 0)


@pytest.fixture
def no_copies(monkeypatch):
    """Fail if matmul makes any operand contiguous: transposes and padded rows must be folded."""
    def refuse(a):
        raise AssertionError(f"unexpected copy of {a!r}")
    monkeypatch.setattr(storage, "contiguous", refuse)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (1, 64, 9), (17, 1, 4), (64, 33, 17),
                                   (128, 256, 65)])
def test_matmul_2d(m, k, n, dtype, rng):
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    check(a, b, to_device(a), to_device(b), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_transposed_views_are_folded(which, dtype, rng, no_copies):
    m, k, n = 37, 19, 23
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    da = transposed_view(a.T) if which in ("a", "both") else to_device(a)
    db = transposed_view(b.T) if which in ("b", "both") else to_device(b)
    assert not (which != "b" and da.is_contiguous) and not (which != "a" and db.is_contiguous)
    check(a, b, da, db, dtype)


def test_padded_rows_are_folded(rng, no_copies):
    """A column slice of a wider matrix has row stride > columns: a leading dimension, not a copy."""
    wide = rng.standard_normal((12, 20))
    b = rng.standard_normal((7, 5))
    d = to_device(wide)
    view = d.view((12, 7), (20, 1), 3)  # wide[:, 3:10]
    check(wide[:, 3:10], b, view, to_device(b), np.float64)


def test_irregular_view_is_copied(rng):
    """Every other column: neither rows nor columns contiguous, so cuBLAS needs a packed copy."""
    wide = rng.standard_normal((6, 10))
    b = rng.standard_normal((5, 4))
    view = to_device(wide).view((6, 5), (10, 2), 0)
    check(wide[:, ::2], b, view, to_device(b), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_shape,b_shape", [
    ((4, 3, 5), (4, 5, 2)),           # plain strided batch
    ((2, 1, 3, 5), (4, 5, 6)),        # broadcast both ways -> (2, 4, 3, 6)
    ((5, 3, 4), (4, 2)),              # shared B: folded into one taller GEMM
    ((3, 4), (6, 4, 2)),              # shared A: batch stride 0
    ((2, 3, 7, 5), (3, 5, 4)),        # batch dims that do not collapse: a loop of batched calls
    ((1, 1, 3, 2), (1, 2, 1)),
])
def test_batched_and_broadcast(a_shape, b_shape, dtype, rng):
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    check(a, b, to_device(a), to_device(b), dtype)


def test_batched_transposed_view(rng, no_copies):
    a = rng.standard_normal((3, 8, 6))
    bt = rng.standard_normal((3, 5, 6))  # b = bt.transpose(0, 2, 1), as x @ w.T in a linear layer
    check(a, bt.transpose(0, 2, 1), to_device(a), transposed_view(bt), np.float64)


def test_empty_inner_dimension_gives_zeros(rng):
    a, b = np.zeros((3, 0)), np.zeros((0, 4))
    y = blas.matmul(to_device(a), to_device(b))
    np.testing.assert_array_equal(to_host(y), np.zeros((3, 4)))


def test_empty_output():
    y = blas.matmul(to_device(np.zeros((2, 0, 3))), to_device(np.ones((3, 4))))
    assert y.shape == (2, 0, 4)


@pytest.mark.parametrize("a_shape,b_shape,error", [
    ((3, 4), (5, 2), ShapeError),
    ((4,), (4, 2), ShapeError),
    ((2, 3, 4), (3, 4, 5), ShapeError),
])
def test_shape_errors(a_shape, b_shape, error):
    with pytest.raises(error, match="matmul"):
        blas.matmul(to_device(np.ones(a_shape)), to_device(np.ones(b_shape)))


def test_dtype_errors():
    with pytest.raises(DTypeError, match="matmul"):
        blas.matmul(to_device(np.ones((2, 2), np.float32)), to_device(np.ones((2, 2))))
    with pytest.raises(DTypeError, match="matmul"):
        blas.matmul(to_device(np.ones((2, 2), np.int64)), to_device(np.ones((2, 2), np.int64)))


def test_tf32_switch(rng):
    """Off by default (full float32 accuracy); on, the error grows to TF32's ~1e-3 and it switches back."""
    a = rng.standard_normal((512, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 512)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    da, db = to_device(a), to_device(b)
    assert not blas.tf32_enabled()
    try:
        blas.set_tf32(True)
        tf32_err = rel_err(to_host(blas.matmul(da, db)), ref)
    finally:
        blas.set_tf32(False)
    full_err = rel_err(to_host(blas.matmul(da, db)), ref)
    assert full_err < 2e-6 and 1e-5 < tf32_err < 5e-3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    torch.backends.cuda.matmul.allow_tf32 = False
    a = rng.standard_normal((3, 96, 130)).astype(dtype)
    bt = rng.standard_normal((70, 130)).astype(dtype)
    got = to_host(blas.matmul(to_device(a), transposed_view(bt)))
    want = (torch.from_numpy(a).cuda() @ torch.from_numpy(bt).cuda().T).cpu().numpy()
    assert rel_err(got, want.astype(np.float64)) < TOL[getattr(np, dtype)] * 2


@pytest.fixture
def rng():
    return np.random.default_rng(0)
