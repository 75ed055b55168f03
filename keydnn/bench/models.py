"""More benchmark workloads (keydnn.bench.workloads has the MLP and LeNet steps): the seed README's CNN
training step, an LSTM training step, the seed's Conv2d forward shape and one tiny op (dispatch overhead).
Each builder returns a zero-argument callable that runs one step on ``device``."""

from __future__ import annotations

import numpy as np

from keydnn.bench.workloads import Step, lenet_data

SEED_CONV = {"batch": 8, "in_channels": 64, "out_channels": 128, "size": 112, "kernel": 3}


def seed_cnn_step(device: str = "cpu", batch: int = 64) -> Step:
    """One SGD step of the seed README's CNN (Conv 1->8 3x3 pad 1, ReLU, MaxPool 2, Flatten, Linear) on 28x28,
    trained on its logits with softmax cross-entropy (the README's final Softmax is folded into the loss)."""
    from keydnn import Tensor
    from keydnn.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropy
    from keydnn.optim import SGD

    x_np, y_np = lenet_data(batch)
    x, y = Tensor.from_numpy(x_np, device=device), Tensor.from_numpy(y_np, device=device)
    model = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(8 * 14 * 14, 10))
    model = model.to(device)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def lstm_step(device: str = "cpu", batch: int = 32, steps: int = 8, features: int = 32, hidden: int = 64) -> Step:
    """One Adam step of a time-major LSTM whose last hidden state feeds a Linear classifier."""
    from keydnn import Tensor
    from keydnn.nn import LSTM, Linear, SoftmaxCrossEntropy
    from keydnn.optim import Adam

    rng = np.random.default_rng(0)
    x = Tensor.from_numpy(rng.standard_normal((steps, batch, features)).astype(np.float32), device=device)
    y = Tensor.from_numpy(rng.integers(0, 10, batch), device=device)
    lstm, head = LSTM(features, hidden).to(device), Linear(hidden, 10).to(device)
    loss_fn = SoftmaxCrossEntropy()
    opt = Adam(list(lstm.parameters()) + list(head.parameters()), lr=1e-3)

    def step():
        opt.zero_grad()
        out = lstm(x)
        seq = out[0] if isinstance(out, tuple) else out
        loss = loss_fn(head(seq[steps - 1]), y)
        loss.backward()
        opt.step()
        return loss
    return step


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
