"""The seed's import paths still work (as one-line re-exports), and the seed README's CPU Quickstart and
JSON checkpoint usage run verbatim."""

from __future__ import annotations

import importlib

import pytest

SEED_PATHS = {
    "keydnn.infrastructure.tensor._tensor": ["Tensor"],
    "keydnn.domain.device._device": ["Device"],
    "keydnn.infrastructure._models": ["Sequential", "Model"],
    "keydnn.infrastructure.models._sequential": ["Sequential"],
    "keydnn.infrastructure.models._models": ["Model"],
    "keydnn.infrastructure.models._history": ["History"],
    "keydnn.infrastructure._linear": ["Linear"],
    "keydnn.infrastructure.fully_connected._linear": ["Linear"],
    "keydnn.infrastructure.fully_connected._dense": ["Dense"],
    "keydnn.infrastructure._activations": ["ReLU", "Softmax", "Sigmoid", "Tanh", "LeakyReLU"],
    "keydnn.infrastructure.flatten._flatten_module": ["Flatten"],
    "keydnn.infrastructure.layers._dropout": ["Dropout"],
    "keydnn.infrastructure._losses": ["SSEFn", "MSEFn", "BinaryCrossEntropyFn", "CategoricalCrossEntropyFn"],
    "keydnn.infrastructure.optimizers._sgd": ["SGD"],
    "keydnn.infrastructure.optimizers._adam": ["Adam"],
    "keydnn.infrastructure._parameter": ["Parameter"],
    "keydnn.infrastructure._module": ["Module"],
    "keydnn.infrastructure.utils.weight_initializer": ["WeightInitializer"],
    "keydnn.infrastructure.recurrent": ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "Bidirectional"],
    "keydnn.infrastructure.recurrent._rnn_module": ["RNNCell", "RNN"],
    "keydnn.infrastructure.recurrent._lstm_module": ["LSTMCell", "LSTM"],
    "keydnn.infrastructure.recurrent._gru_module": ["GRUCell", "GRU"],
    "keydnn.infrastructure.recurrent._bidirectional": ["Bidirectional"],
}

# Paths that arrived with a later issue's layers (convolution, pooling)
LATER_PATHS = {
    "keydnn.infrastructure.convolution._conv2d_module": ["Conv2d"],
    "keydnn.infrastructure.pooling._pooling_module": ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d"],
}

QUICKSTART = '''
from keydnn.infrastructure.tensor._tensor import Tensor
from keydnn.domain.device._device import Device

x = Tensor(shape=(2, 3), device=Device("cpu"), requires_grad=True)
y = (x * 2.0).sum()
y.backward()
print(x.grad.to_numpy())
'''

CHECKPOINT_USAGE = '''
from keydnn.infrastructure._models import Sequential
from keydnn.infrastructure.convolution._conv2d_module import Conv2d
from keydnn.infrastructure._linear import Linear
from keydnn.infrastructure.pooling._pooling_module import MaxPool2d
from keydnn.infrastructure.flatten._flatten_module import Flatten
from keydnn.infrastructure._activations import ReLU, Softmax

model = Sequential(
    Conv2d(in_channels=1, out_channels=8, kernel_size=3, padding=1),
    ReLU(),
    MaxPool2d(kernel_size=2),
    Flatten(),
    Linear(in_features=8 * 14 * 14, out_features=10),
    Softmax(axis=-1),
)

model.save_json("checkpoint.json")
loaded = Sequential.load_json("checkpoint.json")
'''


@pytest.mark.parametrize("path", sorted(SEED_PATHS))
def test_seed_path_imports(path):
    module = importlib.import_module(path)
    for name in SEED_PATHS[path]:
        assert hasattr(module, name), f"{path} lacks {name}"


def test_seed_paths_are_re_exports_not_copies():
    from keydnn.infrastructure.nn import Linear, Sequential
    from keydnn.infrastructure.optim import SGD
    assert importlib.import_module("keydnn.infrastructure._models").Sequential is Sequential
    assert importlib.import_module("keydnn.infrastructure.fully_connected._linear").Linear is Linear
    assert importlib.import_module("keydnn.infrastructure.optimizers._sgd").SGD is SGD


def test_readme_cpu_quickstart_runs_verbatim(capsys):
    exec(compile(QUICKSTART, "README-quickstart", "exec"), {})
    assert capsys.readouterr().out.strip() == "[[2. 2. 2.]\n [2. 2. 2.]]"


def test_readme_json_checkpoint_usage_runs_verbatim(tmp_path, monkeypatch):
    for path in LATER_PATHS:
        pytest.importorskip(path, reason=f"{path} arrives with the convolution/pooling layers")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(CHECKPOINT_USAGE, "README-checkpoint", "exec"), scope)
    import numpy as np
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(scope["loaded"].predict(x).to_numpy(), scope["model"].predict(x).to_numpy())


def test_readme_checkpoint_usage_without_conv_layers(tmp_path, monkeypatch):
    """The same usage with the layers of this package only, so it is exercised even before Conv2d exists."""
    monkeypatch.chdir(tmp_path)
    code = "\n".join(line for line in CHECKPOINT_USAGE.splitlines()
                     if "Conv2d" not in line and "MaxPool2d" not in line)
    code = code.replace("8 * 14 * 14", "1 * 28 * 28")
    scope: dict = {}
    exec(compile(code, "README-checkpoint-dense", "exec"), scope)
    assert (tmp_path / "checkpoint.json").exists()
    assert [type(m).__name__ for m in scope["loaded"]] == ["ReLU", "Flatten", "Linear", "Softmax"]
