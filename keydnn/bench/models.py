"""Model steps built alike for KeyDNN and PyTorch: the seed README's CNN (Conv2d(1, 8, 3, pad 1),
ReLU, MaxPool 2, Flatten, Linear(8*14*14, 10)) trained with SGD on 1x28x28 inputs, and an LSTM layer's forward
+ backward over time-major input. The MLP and LeNet steps are in ``workloads``."""

from __future__ import annotations

import numpy as np

from keydnn.bench.workloads import Step, lenet_data, training_step

LSTM_SHAPE = (16, 32, 64, 128)  # T, N, D, hidden


def keydnn_seed_cnn_step(device: str = "cpu", batch: int = 64) -> Step:
    from keydnn import Tensor
    from keydnn.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropy
    from keydnn.optim import SGD

    x_np, y_np = lenet_data(batch)
    x, y = Tensor.from_numpy(x_np, device=device), Tensor.from_numpy(y_np, device=device)
    model = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(8 * 14 * 14, 10))
    model = model.to(device)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01)

    return training_step(model, loss_fn, opt, x, y)


def torch_seed_cnn_step(device: str = "cpu", batch: int = 64) -> Step:
    import torch
    nn = torch.nn

    x_np, y_np = lenet_data(batch)
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 14 * 14, 10)).to(device)
    loss_fn, opt = nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)

    return training_step(model, loss_fn, opt, x, y)


def _lstm_input(shape: tuple[int, int, int, int] = LSTM_SHAPE) -> np.ndarray:
    t, n, d, _ = shape
    return np.random.default_rng(0).standard_normal((t, n, d)).astype(np.float32)


def keydnn_lstm_step(device: str = "cpu", shape: tuple[int, int, int, int] = LSTM_SHAPE) -> Step:
    """Forward + backward of LSTM(D -> H) over time-major (T, N, D); ``shape`` is (T, N, D, H)."""
    from keydnn import Tensor
    from keydnn.infrastructure.recurrent import LSTM

    _, _, d, h = shape
    layer = LSTM(d, h, return_state=False).to(device)
    x = Tensor.from_numpy(_lstm_input(shape), device=device, requires_grad=True)

    def step():
        x.grad = None
        for p in layer.parameters():
            p.grad = None
        layer(x).sum().backward()
    return step


def torch_lstm_step(device: str = "cpu", shape: tuple[int, int, int, int] = LSTM_SHAPE) -> Step:
    import torch

    _, _, d, h = shape
    layer = torch.nn.LSTM(d, h).to(device)
    x = torch.from_numpy(_lstm_input(shape)).to(device).requires_grad_()

    def step():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x)[0].sum().backward()
    return step


SEED_CONV = {"batch": 8, "in_channels": 64, "out_channels": 128, "size": 112, "kernel": 3}


def seed_conv_forward(device: str = "cpu", dtype: str = "float32") -> Step:
    """The seed's Conv2d benchmark: 8x64x112x112 -> 128 channels, 3x3, stride 1, padding 1, bias, forward."""
    from keydnn import Tensor, no_grad
    from keydnn.infrastructure.ops import conv

    c = SEED_CONV
    rng = np.random.default_rng(0)
    x = Tensor.from_numpy(rng.standard_normal((c["batch"], c["in_channels"], c["size"], c["size"])).astype(dtype),
                          device=device)
    w = Tensor.from_numpy(rng.standard_normal((c["out_channels"], c["in_channels"], c["kernel"], c["kernel"]))
                          .astype(dtype) * 0.05, device=device)
    b = Tensor.from_numpy(np.zeros(c["out_channels"], dtype), device=device)

    def step():
        with no_grad():
            return conv.conv2d(x, w, b, padding=1)
    return step


def tiny_add(device: str = "cpu") -> Step:
    """``a + b`` on one-element tensors: the per-op cost of KeyDNN's Python path (checks, dispatch, graph)."""
    from keydnn import Tensor

    a = Tensor.from_numpy(np.ones(1, np.float32), device=device, requires_grad=True)
    b = Tensor.from_numpy(np.ones(1, np.float32), device=device)
    return lambda: a + b
