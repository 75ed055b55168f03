"""Shared helpers for the CUDA tests: NumPy parity with dtype-aware tolerances."""

from __future__ import annotations

import numpy as np


def assert_close(
    got: np.ndarray, ref: np.ndarray, dtype=None, rtol: float | None = None, atol: float | None = None
):
    """Exact for integers and bools; float tolerances by dtype. Shapes and dtypes must match too."""
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    dt = np.dtype(dtype or ref.dtype)
    assert got.dtype == dt, (got.dtype, dt)
    if dt.kind in "biu":
        np.testing.assert_array_equal(got, ref)
        return
    default = (2e-5, 1e-6) if dt == np.float32 else (1e-12, 1e-13)
    np.testing.assert_allclose(
        got, ref, rtol=rtol or default[0], atol=atol if atol is not None else default[1], equal_nan=True
    )
