"""The implementations satisfy the domain Protocols (structural typing, checked at runtime)."""

from __future__ import annotations

import pytest

from keydnn import Tensor
from keydnn.domain.protocols import IInitializer, ILoss, IModule, IOptimizer, IParameter, ITensor
from keydnn.infrastructure import losses
from keydnn.infrastructure.initializers import WeightInitializer
from keydnn.infrastructure.nn import Dense, Dropout, Flatten, Linear, ReLU, Sequential, Softmax
from keydnn.infrastructure.optim import SGD, Adam, AdamW
from keydnn.infrastructure.parameter import Parameter


def test_tensor_and_parameter():
    assert isinstance(Tensor.zeros((2,)), ITensor)
    p = Parameter((2, 2))
    assert isinstance(p, IParameter) and isinstance(p, ITensor)


@pytest.mark.parametrize("module", [Linear(2, 2), Dense(3), ReLU(), Softmax(), Flatten(), Dropout(),
                                    Sequential(Linear(2, 2)), losses.MSE()], ids=lambda m: type(m).__name__)
def test_modules(module):
    assert isinstance(module, IModule)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_optimizers(cls):
    assert isinstance(cls(Linear(2, 2).parameters()), IOptimizer)


def test_losses_and_initializers():
    for loss in (losses.SSE(), losses.MSE(), losses.BinaryCrossEntropy(), losses.BCEWithLogits(),
                 losses.CategoricalCrossEntropy(), losses.SoftmaxCrossEntropy(), losses.mse,
                 losses.MSEFn.apply):
        assert isinstance(loss, ILoss)
    assert isinstance(WeightInitializer("kaiming"), IInitializer)
