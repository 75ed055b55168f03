"""cuDNN batch-norm kernels: training forward and backward against float64 formulas and torch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.backends.cuda import _cudart, batchnorm, storage

REQUIRE = os.environ.get("KEYDNN_REQUIRE_CUDA") == "1"
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not _cudart.is_available() and not REQUIRE,
                                 reason=f"CUDA unavailable: {_cudart.unavailable_reason()}")]
TOL = {np.float32: 1e-5, np.float64: 1e-12}
SHAPES = [(8, 3), (1, 5), (2, 4), (4, 3, 5, 7), (1, 2, 3, 3), (2, 3, 4), (16, 32, 1, 1), (3, 7, 9, 11)]


def to_device(a: np.ndarray) -> storage.CudaArray:
    a = np.ascontiguousarray(a)
    out = storage.empty(a.shape, a.dtype, 0)
    _cudart.memcpy(out.ptr, a.ctypes.data, a.nbytes, _cudart.MEMCPY_H2D)
    return out


def to_host(x: storage.CudaArray) -> np.ndarray:
    out = np.empty(x.shape, x.dtype)
    _cudart.memcpy(out.ctypes.data, x.ptr, x.nbytes, _cudart.MEMCPY_D2H)
    return out


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-300))


def channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def ref_forward(x, gamma, beta, eps):
    x = x.astype(np.float64)
    axes = (0, *range(2, x.ndim))
    mean = x.mean(axis=axes)
    invstd = 1.0 / np.sqrt(x.var(axis=axes) + eps)  # biased variance
    y = (x - channel(mean, x.ndim)) * channel(invstd * gamma, x.ndim) + channel(beta, x.ndim)
    return y, mean, invstd


def ref_backward(gy, x, gamma, mean, invstd):
    gy, x = gy.astype(np.float64), x.astype(np.float64)
    axes = (0, *range(2, x.ndim))
    m = x.size // x.shape[1]
    xhat = (x - channel(mean, x.ndim)) * channel(invstd, x.ndim)
    gbeta, ggamma = gy.sum(axis=axes), (gy * xhat).sum(axis=axes)
    gx = channel(gamma * invstd, x.ndim) * (gy - channel(gbeta / m, x.ndim)
                                            - xhat * channel(ggamma / m, x.ndim))
    return gx, ggamma, gbeta


def make(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    gamma, beta = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    return x, gamma, beta, rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward(shape, dtype, rng):
    x, gamma, beta, gy = make(shape, dtype, rng)
    eps = 1e-3
    y, mean, invstd = batchnorm.batch_norm_forward(to_device(x), to_device(gamma), to_device(beta), eps)
    y_ref, mean_ref, invstd_ref = ref_forward(x, gamma, beta, eps)
    assert y.shape == x.shape and mean.shape == invstd.shape == (shape[1],) and y.dtype == np.dtype(dtype)
    for got, want in ((y, y_ref), (mean, mean_ref), (invstd, invstd_ref)):
        assert rel_err(to_host(got), want) < TOL[dtype]
    grads = batchnorm.batch_norm_backward(to_device(gy), to_device(x), to_device(gamma), mean, invstd)
    # gx = gamma * invstd * (gy - mean(gy) - xhat * mean(gy * xhat)) cancels to ~0 when a channel holds
    # few values, so its error is measured against the size of the terms that cancel, not of the result.
    terms = np.linalg.norm(gy * channel(gamma * invstd_ref, x.ndim))
    for got, want, scale in zip(grads, ref_backward(gy, x, gamma, mean_ref, invstd_ref),
                                (terms, np.linalg.norm(gy), np.linalg.norm(gy)), strict=True):
        assert np.linalg.norm(to_host(got) - want) < TOL[dtype] * max(scale, np.linalg.norm(want))


def test_backward_uses_the_given_statistics(rng):
    """The saved mean and invstd come from the caller (e.g. computed on the CPU with another eps)."""
    x, gamma, _, gy = make((6, 4, 3, 3), np.float64, rng)
    _, mean, invstd = ref_forward(x, gamma, np.zeros(4), 0.5)
    grads = batchnorm.batch_norm_backward(to_device(gy), to_device(x), to_device(gamma), to_device(mean),
                                          to_device(invstd))
    for got, want in zip(grads, ref_backward(gy, x, gamma, mean, invstd), strict=True):
        assert rel_err(to_host(got), want) < 1e-12


def test_without_affine_parameters(rng):
    x, _, _, gy = make((5, 3, 4, 4), np.float64, rng)
    y, mean, invstd = batchnorm.batch_norm_forward(to_device(x), None, None, 1e-5)
    ones, zeros = np.ones(3), np.zeros(3)
    y_ref, mean_ref, invstd_ref = ref_forward(x, ones, zeros, 1e-5)
    assert rel_err(to_host(y), y_ref) < 1e-12
    gx, ggamma, gbeta = batchnorm.batch_norm_backward(to_device(gy), to_device(x), None, mean, invstd)
    assert ggamma is None and gbeta is None
    assert rel_err(to_host(gx), ref_backward(gy, x, ones, mean_ref, invstd_ref)[0]) < 1e-12


def test_errors():
    x = to_device(np.ones((4, 3, 2, 2)))
    with pytest.raises(ShapeError, match="batch_norm_forward"):
        batchnorm.batch_norm_forward(x, to_device(np.ones(4)), to_device(np.ones(3)), 1e-5)
    with pytest.raises(DTypeError, match="batch_norm_forward"):
        batchnorm.batch_norm_forward(x, to_device(np.ones(3, np.float32)), to_device(np.ones(3)), 1e-5)
    with pytest.raises(ShapeError, match="batch_norm_forward"):
        batchnorm.batch_norm_forward(to_device(np.ones(3)), None, None, 1e-5)
    with pytest.raises(ShapeError, match="batch_norm_backward"):
        batchnorm.batch_norm_backward(to_device(np.ones((4, 3))), x, None, to_device(np.zeros(3)),
                                      to_device(np.ones(3)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(32, 10), (8, 16, 13, 11)])
def test_matches_torch(shape, dtype, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    x, gamma, beta, gy = make(shape, getattr(np, dtype), rng)
    tx, tg, tb = (torch.from_numpy(a).cuda().requires_grad_() for a in (x, gamma, beta))
    ty = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    ty.backward(torch.from_numpy(gy).cuda())
    y, mean, invstd = batchnorm.batch_norm_forward(to_device(x), to_device(gamma), to_device(beta), 1e-5)
    grads = batchnorm.batch_norm_backward(to_device(gy), to_device(x), to_device(gamma), mean, invstd)
    tol = TOL[getattr(np, dtype)] * 2
    for got, want in zip((y, *grads), (ty, tx.grad, tg.grad, tb.grad), strict=True):
        assert rel_err(to_host(got), want.detach().cpu().numpy().astype(np.float64)) < tol


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_update_matches_the_numpy_reference(dtype, rng):
    """One kernel updates the running statistics in place, as the NumPy kernel (PyTorch's convention)."""
    from keydnn.infrastructure.backends import cuda, numpy_table

    kt, ref = cuda.table(0), numpy_table()
    c = 37
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2.0, c).astype(dtype)
    mean, invstd = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2.0, c).astype(dtype)
    d_rm, d_rv = kt.from_host(rm), kt.from_host(rv)
    kt.batch_norm_running_update(d_rm, d_rv, kt.from_host(mean), kt.from_host(invstd), 0.1, 1e-5, 96)
    ref.batch_norm_running_update(rm, rv, mean, invstd, 0.1, 1e-5, 96)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(kt.to_host(d_rm), rm, rtol=tol)
    np.testing.assert_allclose(kt.to_host(d_rv), rv, rtol=tol)
    with pytest.raises(ShapeError):
        kt.batch_norm_running_update(d_rm, kt.from_host(rv[:5]), kt.from_host(mean), kt.from_host(invstd), 0.1,
                                     1e-5, 96)
