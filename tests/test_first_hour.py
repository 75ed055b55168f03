"""Defects a new user hits in the first hour (issue 8): Tensor construction, numpy() safety, op errors,
1-D matmul, ``dim=``, random tensors' memory. Each test failed before its fix."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import keydnn
from keydnn import Tensor
from keydnn.domain.errors import AxisError, DTypeError, OutOfMemoryError, ShapeError, wrap_kernel_error


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


# ---- 7. NumPy's errors and MemoryError come out as KeyDNN errors naming the op -----------------------------
@pytest.mark.parametrize("op", ["max", "min", "argmax"])
def test_reducing_an_empty_axis_names_the_op(op):
    t = Tensor.zeros((0, 3))
    with pytest.raises(ShapeError, match=rf"^{op}: cannot reduce over an empty axis.*shape=\(0, 3\) "
                                         r"dtype=float32 device=cpu"):
        getattr(t, op)()
    assert getattr(t, op)(axis=1).shape == (0,)  # reducing a non-empty axis of an empty tensor is fine


@pytest.mark.parametrize("make", [lambda: Tensor.zeros((10**7, 10**7)), lambda: Tensor.randn((10**7, 10**7)),
                                  lambda: Tensor((10**7, 10**7)),
                                  lambda: Tensor.ones((10**7, 1)) + Tensor.ones((1, 10**7))],
                         ids=["zeros", "randn", "constructor", "add"])
def test_out_of_memory_is_a_keydnn_error_naming_the_op(make):
    with pytest.raises(OutOfMemoryError) as info:
        make()
    assert isinstance(info.value, MemoryError)  # still caught by `except MemoryError`
    msg = str(info.value)
    assert msg.split(":")[0] in ("zeros", "randn", "Tensor", "Add") and "dtype=float32 device=cpu" in msg


def test_a_kernel_error_inside_an_op_is_wrapped_with_the_operands():
    e = wrap_kernel_error("Reshape", ValueError("cannot reshape"), Tensor.zeros((2, 3)))
    assert isinstance(e, ShapeError) and isinstance(e, ValueError)
    assert str(e) == "Reshape: cannot reshape [#0: shape=(2, 3) dtype=float32 device=cpu]"


# ---- 8. 1-D @ 1-D is the dot product --------------------------------------------------------------------
def test_vector_at_vector_is_the_dot_product_with_gradients():
    v = keydnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = keydnn.tensor([4.0, 5.0, 6.0], requires_grad=True)
    d = v @ w
    assert d.shape == () and d.item() == 32.0
    d.backward()
    assert v.grad.tolist() == [4.0, 5.0, 6.0] and w.grad.tolist() == [1.0, 2.0, 3.0]
    assert (v @ v).item() == 14.0
    with pytest.raises(ShapeError, match="same length"):
        v @ keydnn.tensor([1.0, 2.0])


# ---- 9. dim= as PyTorch's spelling of axis= ---------------------------------------------------------------
def test_dim_is_accepted_wherever_an_axis_is_taken():
    x_np = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = keydnn.tensor(x_np)
    assert x.sum(dim=0).tolist() == x_np.sum(0).tolist()
    assert x.sum(dim=1, keepdim=True).shape == (2, 1)
    assert x.mean(dim=(0, 1)).item() == x_np.mean()
    assert x.max(dim=1).tolist() == [2.0, 5.0] and x.min(dim=0).tolist() == [0.0, 1.0, 2.0]
    assert x.argmax(dim=1).tolist() == [2, 2]
    np.testing.assert_allclose(x.softmax(dim=0).sum(axis=0).to_numpy(), [1, 1, 1], rtol=1e-6)
    assert x.log_softmax(dim=1).shape == (2, 3)
    assert x.unsqueeze(dim=0).shape == (1, 2, 3) and x.unsqueeze(dim=0).squeeze(dim=0).shape == (2, 3)
    assert x.transpose(dim0=0, dim1=1).shape == (3, 2)
    assert Tensor.zeros((2, 3, 4)).flatten(start_dim=1).shape == (2, 12)
    assert Tensor.concat([x, x], dim=1).shape == (2, 6) and Tensor.stack([x, x], dim=2).shape == (2, 3, 2)
    assert keydnn.nn.Softmax(dim=0)(x).sum(axis=0).tolist() == pytest.approx([1, 1, 1])


def test_axis_and_dim_together_is_a_keydnn_error():
    with pytest.raises(AxisError, match="^sum: give axis or its alias dim, not both"):
        Tensor.zeros((2, 3)).sum(axis=0, dim=1)


def test_unknown_keywords_name_the_op_not_an_internal_closure():
    with pytest.raises(TypeError) as info:
        Tensor.zeros((2,)).sum(foo=1)
    assert "<locals>" not in str(info.value) and "sum" in str(info.value)


@pytest.mark.parametrize("call, error, op", [
    (lambda: Tensor.arange(0, 1, 0), ShapeError, "arange"),
    (lambda: Tensor.zeros((2, 2)).__setitem__(0, Tensor.ones((3,))), ShapeError, "setitem"),
    (lambda: Tensor.zeros((2, 2)).sum(axis=0.5), AxisError, "sum"),
    (lambda: Tensor.zeros((2, 2)).sum(axis=True), AxisError, "sum"),
    (lambda: bool(Tensor.zeros((2, 2))), ShapeError, "bool"),
], ids=["arange_step_0", "setitem_broadcast", "float_axis", "bool_axis", "truth_value"])
def test_other_first_hour_mistakes_raise_keydnn_errors_naming_the_op(call, error, op):
    with pytest.raises(error, match=f"^{op}: "):
        call()
