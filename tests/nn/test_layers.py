"""Layers: Linear/Dense against NumPy and PyTorch, activations, Flatten, Dropout and the initializers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import DeviceMismatchError, DTypeError, ShapeError
from keydnn.infrastructure import initializers as init
from keydnn.infrastructure.nn import (
    BatchNorm1d,
    BatchNorm2d,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from keydnn.infrastructure.tensor import manual_seed


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_forward_backward_matches_numpy(dtype, rng):
    lin = Linear(5, 3, dtype=dtype)
    x_np = rng.standard_normal((4, 5)).astype(dtype)
    x = Tensor.from_numpy(x_np, requires_grad=True)
    y = lin(x)
    assert y.dtype == np.dtype(dtype) and y.shape == (4, 3)
    w, b = lin.weight.to_numpy(), lin.bias.to_numpy()
    np.testing.assert_allclose(y.to_numpy(), x_np @ w.T + b, rtol=1e-5)
    g = rng.standard_normal((4, 3)).astype(dtype)
    y.backward(Tensor.from_numpy(g))
    np.testing.assert_allclose(x.grad.to_numpy(), g @ w, rtol=1e-5)
    np.testing.assert_allclose(lin.weight.grad.to_numpy(), g.T @ x_np, rtol=1e-5)
    np.testing.assert_allclose(lin.bias.grad.to_numpy(), g.sum(0), rtol=1e-5)


def test_linear_matches_torch_with_batch_axes(rng):
    torch = _torch()
    lin = Linear(6, 4)
    x_np = rng.standard_normal((2, 3, 6)).astype(np.float32)
    x = Tensor.from_numpy(x_np, requires_grad=True)
    (lin(x) ** 2).sum().backward()
    tl = torch.nn.Linear(6, 4)
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(lin.weight.to_numpy()))
        tl.bias.copy_(torch.tensor(lin.bias.to_numpy()))
    tx = torch.from_numpy(x_np).requires_grad_()
    (tl(tx) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.to_numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lin.weight.grad.to_numpy(), tl.weight.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_linear_init_and_errors():
    lin = Linear(4, 2, bias=False)
    assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]
    assert Linear(3, 2).bias.to_numpy().tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        Linear(0, 2)
    with pytest.raises(ShapeError, match="in_features=4"):
        lin(Tensor.ones((2, 5)))
    with pytest.raises(DTypeError):
        lin(Tensor.ones((2, 4), dtype="float64"))


def test_linear_rejects_other_device_input():
    try:
        x = Tensor.ones((2, 4), device="cuda:0")
    except Exception as exc:  # no usable GPU here
        pytest.skip(f"no usable CUDA device: {exc}")
    with pytest.raises(DeviceMismatchError):
        Linear(4, 2)(x)


def test_dense_builds_once_on_first_call_and_checks_later_inputs():
    manual_seed(3)
    d = Dense(3)
    assert not d.is_built and list(d.parameters()) == []
    y = d(Tensor.ones((2, 5), dtype="float64"))
    assert d.is_built and d.in_features == 5 and y.shape == (2, 3) and y.dtype == np.float64
    assert [n for n, _ in d.named_parameters()] == ["weight", "bias"]  # registered once
    with pytest.raises(ShapeError, match="in_features=5"):
        d(Tensor.ones((2, 4), dtype="float64"))
    assert Dense(2, in_features=7).is_built


ACTIVATIONS = [
    (ReLU(), lambda t, x: t.relu(x)),
    (Sigmoid(), lambda t, x: t.sigmoid(x)),
    (Tanh(), lambda t, x: t.tanh(x)),
    (LeakyReLU(0.2), lambda t, x: t.nn.functional.leaky_relu(x, 0.2)),
    (Softmax(axis=0), lambda t, x: t.softmax(x, 0)),
    (Softmax(), lambda t, x: t.softmax(x, -1)),
    (LogSoftmax(1), lambda t, x: t.log_softmax(x, 1)),
]


@pytest.mark.parametrize("layer,ref", ACTIVATIONS, ids=[repr(a) for a, _ in ACTIVATIONS])
def test_activation_layers_match_torch(layer, ref, rng):
    torch = _torch()
    x_np = rng.standard_normal((4, 5)) * 3
    g_np = rng.standard_normal((4, 5))
    x = Tensor.from_numpy(x_np, requires_grad=True)
    y = layer(x)
    y.backward(Tensor.from_numpy(g_np))
    tx = torch.from_numpy(x_np).requires_grad_()
    ty = ref(torch, tx)
    ty.backward(torch.from_numpy(g_np))
    np.testing.assert_allclose(y.to_numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.to_numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_softmax_rows_sum_to_one_and_is_stable():
    y = Softmax()(Tensor.from_numpy(np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]])))
    np.testing.assert_allclose(y.to_numpy().sum(1), [1.0, 1.0])
    assert np.isfinite(y.to_numpy()).all()


def test_flatten_and_its_gradient():
    x = Tensor.from_numpy(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = Flatten()(x)
    assert y.shape == (2, 12)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.to_numpy(), np.ones((2, 3, 4)))
    assert Flatten(start_axis=0)(x).shape == (24,)


def test_dropout_train_scales_and_eval_is_identity():
    manual_seed(0)
    drop = Dropout(0.25)
    x = Tensor.ones((200, 100), requires_grad=True)
    y = drop(x).to_numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_dropout_gradient_uses_the_same_mask():
    manual_seed(1)
    x = Tensor.ones((50, 50), requires_grad=True)
    y = Dropout(0.5)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.to_numpy(), y.to_numpy())


@pytest.mark.parametrize("name,std_fn", [
    ("kaiming", lambda fi, fo: math.sqrt(2 / fi)),
    ("kaiming_normal", lambda fi, fo: math.sqrt(2 / fi)),
    ("xavier", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("xavier_uniform", lambda fi, fo: math.sqrt(6 / (fi + fo)) / math.sqrt(3)),
    ("kaiming_uniform", lambda fi, fo: math.sqrt(2 / fi)),
    ("xavier_tanh", lambda fi, fo: 5 / 3 * math.sqrt(2 / (fi + fo))),
    ("kaiming_leaky_relu_0.2", lambda fi, fo: math.sqrt(2 / (1.04 * fi))),
])
def test_initializer_statistics(name, std_fn):
    manual_seed(0)
    t = Tensor.zeros((400, 300))
    init.WeightInitializer(name)(t)
    arr = t.to_numpy()
    assert abs(arr.mean()) < 0.01 * std_fn(300, 400) * 10
    np.testing.assert_allclose(arr.std(), std_fn(300, 400), rtol=0.02)
    if "uniform" in name:
        bound = std_fn(300, 400) * math.sqrt(3)
        assert np.abs(arr).max() <= bound


def test_initializers_are_seeded_and_keep_dtype():
    manual_seed(5)
    a = init.xavier_normal_(Tensor.zeros((3, 4), dtype="float64")).to_numpy().copy()
    manual_seed(5)
    b = init.xavier_normal_(Tensor.zeros((3, 4), dtype="float64")).to_numpy()
    np.testing.assert_array_equal(a, b)
    assert b.dtype == np.float64
    assert init.zeros_(Tensor.ones((2,))).to_numpy().tolist() == [0, 0]
    assert init.ones_(Tensor.zeros((2,))).to_numpy().tolist() == [1, 1]


def test_fans_and_registry():
    assert init.calculate_fans((5,)) == (5, 5)
    assert init.calculate_fans((8, 3)) == (3, 8)
    assert init.calculate_fans((16, 4, 3, 3)) == (36, 144)
    assert {"zeros", "ones", "kaiming", "kaiming_relu", "xavier", "xavier_uniform", "xavier_relu",
            "xavier_tanh", "kaiming_leaky_relu_0.2", "kaiming_leaky_relu_0.01", "xavier_leaky_relu_0.2",
            "xavier_leaky_relu_0.01"} <= set(init.WeightInitializer.available())
    with pytest.raises(ValueError, match="unknown initializer"):
        init.WeightInitializer("bogus")
    with pytest.raises(ValueError, match="already registered"):
        init.WeightInitializer.register_initializer("zeros")
    with pytest.raises(ValueError):
        init.WeightInitializer.register_initializer("")

    @init.WeightInitializer.register_initializer("test_sevens", overwrite=True)
    def sevens(t):
        return init.uniform_(t, 7.0, 7.0)
    assert init.WeightInitializer.get("test_sevens")(Tensor.zeros((2,))).to_numpy().tolist() == [7, 7]


@pytest.mark.parametrize("make, shape", [(lambda: BatchNorm1d(8), (1, 8)), (lambda: BatchNorm1d(4), (1, 4, 1)),
                                         (lambda: BatchNorm2d(3), (1, 3, 1, 1))])
def test_batchnorm_in_training_needs_more_than_one_value_per_channel(make, shape):
    layer = make()
    with pytest.raises(ShapeError, match="more than 1 value per channel when training"):
        layer(Tensor.randn(shape))
    layer.eval()  # running statistics need no batch
    assert layer(Tensor.randn(shape)).shape == shape
