"""Defects a new user hits in the first hour (issue 8): Tensor construction, numpy() safety, op errors,
1-D matmul, ``dim=``, random tensors' memory. Each test failed before its fix."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import keydnn
from keydnn import Tensor
from keydnn.domain.errors import DTypeError, ShapeError


# ---- 1. float "shapes" and keydnn.tensor ------------------------------------------------------------------
@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], [0.5, 2.0], (2, 3.0), [2, True]])
def test_tensor_with_non_int_shape_raises_instead_of_truncating(values):
    with pytest.raises(ShapeError, match="shape dimensions must be ints"):
        Tensor(values)


def test_tensor_int_shapes_still_make_zeros():
    assert Tensor((2, 3)).shape == (2, 3) and Tensor(4).shape == (4,) and Tensor(np.int64(2)).shape == (2,)
    assert Tensor([2, 3]).shape == (2, 3)  # the seed's positional shape


def test_keydnn_tensor_factory_follows_torch_tensor():
    t = keydnn.tensor([1.0, 2.0, 3.0])
    assert t.shape == (3,) and t.dtype == np.float32 and t.tolist() == [1.0, 2.0, 3.0]
    assert keydnn.tensor([[1, 2], [3, 4]]).dtype == np.int64
    assert keydnn.tensor([True, False]).dtype == np.bool_
    assert keydnn.tensor(np.ones(2)).dtype == np.float64  # an ndarray keeps its dtype
    assert keydnn.tensor(2.5).shape == ()
    src = np.arange(3.0)
    t = keydnn.tensor(src, dtype="float32", requires_grad=True)
    src[0] = 9.0  # a copy, as torch.tensor
    assert t.dtype == np.float32 and t.requires_grad and t.tolist() == [0.0, 1.0, 2.0]
    assert keydnn.tensor(t).tolist() == t.tolist()
    with pytest.raises(ShapeError):
        keydnn.tensor([[1, 2], [3]])
    with pytest.raises(ShapeError):
        keydnn.tensor(None)
    with pytest.raises(DTypeError):
        keydnn.tensor(["a", object()])


# ---- 2. numpy() of a tensor in a graph ---------------------------------------------------------------------
def test_numpy_of_a_tensor_that_requires_grad_is_read_only():
    a = Tensor.randn((3,), requires_grad=True)
    n = a.numpy()
    c = (a * a).sum()
    with pytest.raises(ValueError, match="read-only"):
        n[:] = 100
    c.backward()
    np.testing.assert_allclose(a.grad.to_numpy(), 2 * a.to_numpy(), rtol=1e-6)
    assert np.shares_memory(n, a.data)  # a view, not a copy


def test_numpy_of_graph_outputs_and_saved_inputs_is_read_only_until_backward():
    w = Tensor.randn((3,), requires_grad=True)
    x = Tensor.randn((3,))
    y = w * x
    with pytest.raises(ValueError):
        y.numpy()[0] = 1.0
    with pytest.raises(ValueError):
        x.to_numpy()[0] = 1.0  # saved by the Mul node for w's gradient
    y.sum().backward()
    np.testing.assert_allclose(w.grad.to_numpy(), x.to_numpy())
    x.to_numpy()[0] = 5.0  # graph freed: the plain tensor's storage is shared and writable again
    assert x.tolist()[0] == 5.0


def test_numpy_of_a_plain_tensor_shares_writable_storage():
    t = Tensor.zeros((2,))
    t.numpy()[1] = 3.0
    assert t.tolist() == [0.0, 3.0]


# ---- 14. rand / randn in the target dtype ------------------------------------------------------------------
@pytest.mark.parametrize("factory", ["rand", "randn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_tensors_are_drawn_in_their_dtype(factory, dtype):
    shape = (500, 400)
    nbytes = 500 * 400 * np.dtype(dtype).itemsize
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        t = getattr(Tensor, factory)(shape, dtype=dtype)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert t.dtype == np.dtype(dtype) and t.shape == shape
    assert peak <= 1.1 * nbytes, f"{factory} peaked at {peak / nbytes:.2f}x the tensor"
    v = t.to_numpy()
    if factory == "rand":
        assert v.min() >= 0.0 and v.max() < 1.0 and abs(v.mean() - 0.5) < 0.01
    else:
        assert abs(v.mean()) < 0.01 and abs(v.std() - 1.0) < 0.01


def test_random_tensors_reject_integer_dtypes_and_follow_the_seed():
    with pytest.raises(DTypeError, match="rand"):
        Tensor.rand((2,), dtype="int64")
    keydnn.manual_seed(3)
    a = Tensor.randn((4,)).tolist()
    keydnn.manual_seed(3)
    assert Tensor.randn((4,)).tolist() == a
