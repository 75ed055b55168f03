"""The convolutional layers end to end: a Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear -> Softmax chain
against PyTorch, BatchNorm's running statistics and eval mode, JSON save/load of every new module, and a
LeNet-style CNN trained on scikit-learn's digits."""

from __future__ import annotations

import time

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.losses import softmax_cross_entropy
from keydnn.infrastructure.nn import Flatten, Linear, ReLU, Sequential, Softmax
from keydnn.infrastructure.nn.conv import Conv2d, Conv2dTranspose
from keydnn.infrastructure.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from keydnn.infrastructure.nn.pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from keydnn.infrastructure.optim import Adam
from keydnn.infrastructure.serialization import load_json, save_json
from keydnn.infrastructure.tensor import manual_seed


def _chain():
    manual_seed(0)
    return Sequential(
        Conv2d(2, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(4 * 3 * 3, 5), Softmax(axis=-1)
    )


def test_conv_chain_matches_torch_forward_and_gradients():
    torch = pytest.importorskip("torch")
    model = _chain()
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 7)).astype(np.float32)
    y = model(Tensor(data=x))
    assert y.shape == (3, 5)
    (y * Tensor(data=np.arange(15, dtype=np.float32).reshape(3, 5))).sum().backward()
    conv, lin = model[0], model[4]
    tconv = torch.nn.Conv2d(2, 4, 3, padding=1)
    tlin = torch.nn.Linear(36, 5)
    with torch.no_grad():
        for t, k in (
            (tconv.weight, conv.weight),
            (tconv.bias, conv.bias),
            (tlin.weight, lin.weight),
            (tlin.bias, lin.bias),
        ):
            t.copy_(torch.tensor(k.to_numpy()))
    ty = torch.softmax(
        tlin(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(tconv(torch.tensor(x))), 2), 1)), -1
    )
    (ty * torch.arange(15, dtype=torch.float32).reshape(3, 5)).sum().backward()
    np.testing.assert_allclose(y.to_numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    for t, k in ((tconv.weight, conv.weight), (tconv.bias, conv.bias), (tlin.weight, lin.weight)):
        np.testing.assert_allclose(k.grad.to_numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_batch_norm_running_stats_and_eval_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    bn, tbn = BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(np.float32)
        np.testing.assert_allclose(
            bn(Tensor(data=x)).to_numpy(), tbn(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5
        )
    np.testing.assert_allclose(bn.running_mean.to_numpy(), tbn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.to_numpy(), tbn.running_var.numpy(), rtol=1e-5, atol=1e-6)
    bn.eval()
    tbn.eval()
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(
        bn(Tensor(data=x)).to_numpy(), tbn(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5
    )


def test_norm_layers_reject_wrong_inputs():
    with pytest.raises(ShapeError):
        BatchNorm2d(3)(Tensor.ones((2, 4, 3, 3)))
    with pytest.raises(ShapeError):
        BatchNorm1d(3)(Tensor.ones((2, 3, 3, 3)))
    with pytest.raises(ShapeError):
        LayerNorm(4)(Tensor.ones((2, 3)))
    with pytest.raises(ShapeError):
        Conv2d(3, 2, 3)(Tensor.ones((1, 2, 5, 5)))


MODULES = [
    lambda: Conv2d(2, 4, 3, stride=2, padding=1, dilation=1, bias=True),
    lambda: Conv2d(2, 4, (3, 2), padding="same", dilation=2, groups=2, bias=False),
    lambda: Conv2dTranspose(2, 3, 3, stride=2, padding=1, output_padding=1),
    lambda: MaxPool2d(3, stride=2, padding=1),
    lambda: AvgPool2d((2, 3), stride=1, padding=(1, 1)),
    lambda: GlobalAvgPool2d(),
    lambda: BatchNorm2d(2, momentum=0.3, eps=1e-3),
    lambda: LayerNorm((6, 6)),
]


@pytest.mark.parametrize("make", MODULES, ids=lambda m: type(m()).__name__)
def test_json_round_trip(make, tmp_path):
    manual_seed(3)
    model = Sequential(make())
    x = Tensor(data=np.random.default_rng(2).standard_normal((2, 2, 6, 6)).astype(np.float32))
    model(x)  # a training step moves BatchNorm's running statistics away from their initial values
    model.eval()
    expected = model(x).to_numpy()
    save_json(model, tmp_path / "m.json")
    loaded = load_json(tmp_path / "m.json")
    loaded.eval()
    assert loaded[0].get_config() == model[0].get_config()
    np.testing.assert_array_equal(loaded(x).to_numpy(), expected)
    for (n1, a), (n2, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_batch_norm1d_round_trip_keeps_running_stats(tmp_path):
    bn = BatchNorm1d(3)
    bn(Tensor(data=np.random.default_rng(4).standard_normal((8, 3)).astype(np.float32) + 5))
    save_json(Sequential(bn), tmp_path / "bn.json")
    loaded = load_json(tmp_path / "bn.json")[0]
    np.testing.assert_array_equal(loaded.running_mean.to_numpy(), bn.running_mean.to_numpy())
    assert loaded.running_mean.to_numpy().min() > 0.3  # moved towards the batch mean of ~5


def test_lenet_on_digits_reaches_97_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n_train = 1400
    manual_seed(0)
    model = Sequential(
        Conv2d(1, 16, 3, padding=1),
        BatchNorm2d(16),
        ReLU(),
        MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1),
        ReLU(),
        MaxPool2d(2),
        Flatten(),
        Linear(32 * 2 * 2, 64),
        ReLU(),
        Linear(64, 10),
    )
    opt = Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for _ in range(12):
        perm = rng.permutation(n_train)
        for i in range(0, n_train, 50):
            idx = perm[i : i + 50]
            opt.zero_grad()
            loss = softmax_cross_entropy(model(Tensor(data=x[idx])), Tensor(data=y[idx]))
            loss.backward()
            opt.step()
    model.eval()
    pred = model(Tensor(data=x[n_train:])).to_numpy().argmax(axis=1)
    accuracy = float((pred == y[n_train:]).mean())
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.3f} after {time.perf_counter() - start:.1f}s"
