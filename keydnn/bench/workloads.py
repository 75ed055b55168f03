"""Benchmark workloads built the same way for KeyDNN and PyTorch: the seed's MLP and LeNet training steps,
tiny and large elementwise adds. Each builder returns a zero-argument callable that runs one step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Step = Callable[[], Any]


def training_step(model: Any, loss_fn: Any, opt: Any, x: Any, y: Any) -> Step:
    """One optimiser step on (x, y): the same four calls in KeyDNN and PyTorch."""
    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def mlp_data(batch: int = 64, features: int = 64, classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, features)).astype(np.float32), rng.integers(0, classes, batch)


def lenet_data(batch: int = 64, size: int = 28, classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, size, size)).astype(np.float32), rng.integers(0, classes, batch)


def keydnn_mlp_step(device: str = "cpu", batch: int = 64) -> Step:
    from keydnn import Tensor
    from keydnn.nn import Linear, ReLU, Sequential, SoftmaxCrossEntropy
    from keydnn.optim import Adam

    x_np, y_np = mlp_data(batch)
    x, y = Tensor.from_numpy(x_np, device=device), Tensor.from_numpy(y_np, device=device)
    model = Sequential(Linear(64, 128), ReLU(), Linear(128, 128), ReLU(), Linear(128, 10)).to(device)
    loss_fn, opt = SoftmaxCrossEntropy(), Adam(model.parameters(), lr=1e-3)

    return training_step(model, loss_fn, opt, x, y)


def torch_mlp_step(device: str = "cpu", batch: int = 64) -> Step:
    import torch

    x_np, y_np = mlp_data(batch)
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10)).to(device)
    loss_fn, opt = torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)

    return training_step(model, loss_fn, opt, x, y)


def numpy_mlp_step(batch: int = 64) -> Step:
    """The same MLP step written by hand in NumPy: the floor for KeyDNN's CPU overhead."""
    x, y = mlp_data(batch)
    rng = np.random.default_rng(1)
    sizes = [(64, 128), (128, 128), (128, 10)]
    params = [p for i, o in sizes for p in (rng.standard_normal((i, o)).astype(np.float32) * 0.1,
                                             np.zeros(o, np.float32))]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step():
        w1, b1, w2, b2, w3, b3 = params
        h1 = np.maximum(x @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        z = h2 @ w3 + b3
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        g = p.copy()
        g[np.arange(len(y)), y] -= 1
        g /= len(y)
        gw3, gb3 = h2.T @ g, g.sum(0)
        g2 = (g @ w3.T) * (h2 > 0)
        gw2, gb2 = h1.T @ g2, g2.sum(0)
        g1 = (g2 @ w2.T) * (h1 > 0)
        grads = [x.T @ g1, g1.sum(0), gw2, gb2, gw3, gb3]
        t[0] += 1
        c1, c2 = 1 - 0.9 ** t[0], 1 - 0.999 ** t[0]
        for pi, gi, mi, vi in zip(params, grads, m, v):
            mi *= 0.9
            mi += 0.1 * gi
            vi *= 0.999
            vi += 0.001 * gi * gi
            pi -= 1e-3 / c1 * mi / (np.sqrt(vi / c2) + 1e-8)
    return step


def keydnn_lenet_step(device: str = "cpu", batch: int = 64) -> Step:
    from keydnn import Tensor
    from keydnn.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropy
    from keydnn.optim import SGD

    x_np, y_np = lenet_data(batch)
    x, y = Tensor.from_numpy(x_np, device=device), Tensor.from_numpy(y_np, device=device)
    model = Sequential(Conv2d(1, 6, 5), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(256, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10)).to(device)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01)

    return training_step(model, loss_fn, opt, x, y)


def torch_lenet_step(device: str = "cpu", batch: int = 64) -> Step:
    import torch
    nn = torch.nn

    x_np, y_np = lenet_data(batch)
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
                          nn.ReLU(), nn.Linear(84, 10)).to(device)
    loss_fn, opt = nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)

    return training_step(model, loss_fn, opt, x, y)
