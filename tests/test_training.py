"""End-to-end training: XOR to 100% accuracy, and an MLP on scikit-learn's bundled digits to >= 95%
held-out accuracy (no download), quickly enough for the test suite."""

from __future__ import annotations

import time

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.infrastructure.losses import BCEWithLogits, BinaryCrossEntropy, SoftmaxCrossEntropy
from keydnn.infrastructure.metrics import binary_accuracy
from keydnn.infrastructure.nn import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from keydnn.infrastructure.optim import SGD, Adam
from keydnn.infrastructure.tensor import manual_seed

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def test_xor_reaches_full_accuracy_with_probabilities():
    manual_seed(0)
    model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid())
    hist = model.fit(XOR_X, XOR_Y, loss=BinaryCrossEntropy(), optimizer=Adam(model.parameters(), lr=0.05),
                     metrics=["binary_accuracy"], batch_size=4, epochs=300, verbose=0)
    assert hist.last()["binary_accuracy"] == 1.0
    assert binary_accuracy(XOR_Y, model.predict(XOR_X)) == 1.0


def test_xor_with_logits_and_sgd_momentum_on_tensors():
    manual_seed(1)
    model = Sequential(Linear(2, 16), ReLU(), Linear(16, 1))
    x, y = Tensor.from_numpy(XOR_X), Tensor.from_numpy(XOR_Y)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(400):
        model.train_on_batch(x, y, loss=BCEWithLogits(), optimizer=opt)
    assert binary_accuracy(XOR_Y, model.predict(x), threshold=0.0) == 1.0


def test_digits_mlp_reaches_95_percent_held_out():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]
    manual_seed(0)
    model = Sequential(Linear(64, 128), ReLU(), Dropout(0.1), Linear(128, 128), ReLU(), Linear(128, 10))
    start = time.perf_counter()
    model.fit(x[train], y[train], loss=SoftmaxCrossEntropy(), optimizer=Adam(model.parameters(), lr=2e-3),
              batch_size=32, epochs=20, verbose=0)
    elapsed = time.perf_counter() - start
    result = model.evaluate(x[test], y[test], SoftmaxCrossEntropy(), ["accuracy"])
    assert result["accuracy"] >= 0.95, result
    assert elapsed < 30, f"training took {elapsed:.1f}s"
