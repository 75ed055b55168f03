"""CUDA test fixtures: the cuda:0 kernel table (skipped without a GPU unless KEYDNN_REQUIRE_CUDA=1) and
tests/cuda/cuda_helpers.py holds the parity helpers."""

from __future__ import annotations

import os

import pytest

REQUIRE_CUDA = os.environ.get("KEYDNN_REQUIRE_CUDA") == "1"


@pytest.fixture(scope="session")
def kt():
    """The cuda:0 kernel table."""
    from keydnn.infrastructure.backends import cuda

    if not cuda.is_available():
        if REQUIRE_CUDA:
            pytest.fail(f"KEYDNN_REQUIRE_CUDA=1 but CUDA is unavailable: {cuda.unavailable_reason()}")
        pytest.skip(f"CUDA unavailable: {cuda.unavailable_reason()}")
    return cuda.table(0)
