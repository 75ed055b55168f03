"""Tensor construction, dtypes, data movement, repr and the seed's constructors."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Device, Tensor
from keydnn.domain.errors import DeviceNotSupportedError, DTypeError, ShapeError


def test_seed_constructor_makes_zeros_of_given_dtype():
    t = Tensor(shape=(2, 3), device=Device("cpu"), requires_grad=True, dtype=np.float64)
    assert t.shape == (2, 3) and t.dtype == np.float64 and t.requires_grad
    assert not t.to_numpy().any()


def test_factories_and_dtypes():
    assert Tensor.zeros((2,)).dtype == np.float32
    assert Tensor.ones((2,), dtype="float64").dtype == np.float64
    assert Tensor.full((2, 2), 7.0).to_numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert Tensor.arange(5).dtype == np.int64 and Tensor.arange(0, 1, 0.25).shape == (4,)
    assert Tensor.rand((100,)).to_numpy().min() >= 0 and Tensor.randn((3, 3)).shape == (3, 3)
    assert Tensor.from_numpy(np.arange(3)).dtype == np.int64
    assert Tensor(data=[1.5, 2.5]).dtype == np.float32
    with pytest.raises(DTypeError):
        Tensor.zeros((2,), dtype="int8")
    with pytest.raises(DTypeError):
        Tensor.arange(3).requires_grad_()


def test_copy_from_numpy_checks_shape_and_casts():
    t = Tensor(shape=(2,), device="cpu")
    t.copy_from_numpy(np.array([1, 2]))
    assert t.to_numpy().tolist() == [1.0, 2.0] and t.dtype == np.float32
    with pytest.raises(ShapeError):
        t.copy_from_numpy(np.zeros(3))


def test_item_numel_len_and_repr():
    t = Tensor(data=[[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.numel() == 4 and len(t) == 2 and t.sum().item() == 10.0
    assert "requires_grad=True" in repr(t) and "float32" in repr(t)
    with pytest.raises(ShapeError):
        t.item()


def test_device_parsing_and_interning():
    assert Device("cpu") is Device("cpu") and str(Device("cuda")) == "cuda:0"
    assert repr(Device("cuda:1")) == "Device('cuda:1')" and Device("cuda:1").index == 1
    with pytest.raises(ValueError):
        Device("tpu")


def test_cuda_device_without_gpu_raises_clearly():
    from keydnn.infrastructure.backends import cuda
    if cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceNotSupportedError, match="cuda"):
        Tensor.zeros((2,), device="cuda:0")


def test_numpy_interop_defers_to_tensor():
    t = Tensor(data=[1.0, 2.0])
    r = np.array([1.0, 1.0], dtype=np.float32) + t
    assert isinstance(r, Tensor)
    assert (t * np.float64(2.0)).dtype == np.float32  # NumPy scalars don't promote


def test_stack_concat_and_shapes():
    a, b = Tensor.ones((2, 3)), Tensor.zeros((2, 3))
    assert Tensor.stack([a, b]).shape == (2, 2, 3) and Tensor.concat([a, b], axis=1).shape == (2, 6)
    assert a.T.shape == (3, 2) and a.reshape(-1).shape == (6,) and a.unsqueeze(0).shape == (1, 2, 3)
    assert a.sum_to_shape((3,)).to_numpy().tolist() == [2.0, 2.0, 2.0]
