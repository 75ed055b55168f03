"""The autograd engine: deep graphs, accumulation, broadcasting, explicit gradients, freed graphs, no_grad,
in-place safety."""

from __future__ import annotations

import numpy as np
import pytest

import keydnn
from keydnn import Tensor
from keydnn.domain.errors import AutogradError, KeyDNNError


def test_chain_of_ten_thousand_ops_needs_no_recursion():
    x = Tensor.ones((1,), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.to_numpy(), [1.0001 ** 10_000], rtol=1e-3)


def test_gradients_accumulate_on_leaves_only():
    x = Tensor(data=[1.0, 2.0], requires_grad=True)
    h = x * 3.0
    (h * h).sum().backward()
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.to_numpy(), 18 * np.array([1.0, 2.0]) + 1)
    assert h.grad is None


def test_diamond_graph_sums_both_paths():
    x = Tensor(data=[2.0], requires_grad=True)
    a = x * x
    b = a + a * x  # x^2 + x^3
    b.sum().backward()
    np.testing.assert_allclose(x.grad.to_numpy(), [2 * 2.0 + 3 * 4.0])


def test_broadcast_gradient_is_reduced_to_input_shape():
    a = Tensor.randn((4, 3), requires_grad=True)
    b = Tensor.randn((3,), requires_grad=True)
    c = Tensor.randn((4, 1), requires_grad=True)
    (a * b + c).sum().backward()
    assert b.grad.shape == (3,) and c.grad.shape == (4, 1)
    np.testing.assert_allclose(b.grad.to_numpy(), a.to_numpy().sum(0), rtol=1e-5)
    np.testing.assert_allclose(c.grad.to_numpy(), np.full((4, 1), 3.0))


def test_non_scalar_backward_needs_gradient():
    y = Tensor.randn((3,), requires_grad=True) * 2.0
    with pytest.raises(AutogradError, match="not a scalar"):
        y.backward()
    y.backward(Tensor(data=[1.0, 0.0, 2.0]))


def test_gradient_of_wrong_shape_is_rejected():
    y = Tensor.randn((3,), requires_grad=True) * 2.0
    with pytest.raises(AutogradError, match="shape"):
        y.backward(Tensor.ones((2,)))


def test_reusing_a_freed_graph_raises_and_retain_graph_allows_it():
    x = Tensor(data=[1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.to_numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)
    with pytest.raises(AutogradError, match="freed"):
        y.backward()


def test_no_grad_records_nothing_and_restores_state():
    x = Tensor.randn((2,), requires_grad=True)
    with keydnn.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.grad_fn is None
    assert keydnn.is_grad_enabled()

    @keydnn.no_grad()
    def f(t):
        return t + 1.0
    assert not f(x).requires_grad


def test_requires_grad_propagates_and_detach_cuts():
    x = Tensor.randn((2,), requires_grad=True)
    c = Tensor.randn((2,))
    assert (x + c).requires_grad and not (c * 2.0).requires_grad
    assert not x.detach().requires_grad


def test_inplace_on_leaf_requiring_grad_is_refused_outside_no_grad():
    w = Tensor.randn((3,), requires_grad=True)
    with pytest.raises(AutogradError, match="leaf"):
        w += 1.0
    with keydnn.no_grad():
        w -= 0.5  # what optimizers do
    assert w.is_leaf and w.requires_grad


def test_inplace_on_intermediate_is_recorded():
    x = Tensor(data=[1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y += x  # y = 3x
    y *= y  # y = 9x^2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.to_numpy(), 18 * np.array([1.0, 2.0]))


def test_modifying_a_saved_input_in_place_is_detected():
    w = Tensor(data=[1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with keydnn.no_grad():
        w -= 1.0  # an optimizer step before backward
    with pytest.raises(AutogradError, match="modified in place"):
        loss.backward()


def test_comparisons_are_masks_without_gradient():
    x = Tensor.randn((5,), requires_grad=True)
    m = x > 0
    assert m.dtype == np.bool_ and not m.requires_grad
    (x * m).sum().backward()
    np.testing.assert_array_equal(x.grad.to_numpy(), (x.to_numpy() > 0).astype(np.float32))


def test_getitem_backward_accumulates_repeated_indices():
    x = Tensor(data=[1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.to_numpy(), [3.0, 0.0, 1.0])


def test_setitem_is_differentiable():
    x = Tensor(data=[1.0, 2.0, 3.0], requires_grad=True)
    v = Tensor(data=[10.0], requires_grad=True)
    y = x * 1.0
    y[1:2] = v * 2.0
    (y * Tensor(data=[1.0, 5.0, 7.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.to_numpy(), [1.0, 0.0, 7.0])
    np.testing.assert_array_equal(v.grad.to_numpy(), [10.0])


def test_max_gradient_is_shared_between_ties():
    x = Tensor(data=[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.to_numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_errors_are_keydnn_errors_naming_the_op_and_shapes():
    a, b = Tensor.ones((2, 3)), Tensor.ones((4,))
    with pytest.raises(KeyDNNError, match=r"add: .*\(2, 3\).*\(4,\)"):
        a + b
    with pytest.raises(KeyDNNError, match="float64"):
        a + Tensor.ones((2, 3), dtype="float64")
