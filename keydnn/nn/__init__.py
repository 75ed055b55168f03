"""Public layers API: modules, containers, losses, initializers and ``keydnn.nn.functional``."""

from keydnn.infrastructure import initializers as init
from keydnn.infrastructure.losses import (
    MSE,
    SSE,
    BCELoss,
    BCEWithLogits,
    BCEWithLogitsLoss,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    CrossEntropyLoss,
    Loss,
    MSELoss,
    SoftmaxCrossEntropy,
)
from keydnn.infrastructure.nn import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Conv2dTranspose,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    History,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    Model,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.serialization import load_json, register_module, save_json
from keydnn.nn import functional

__all__ = ["AvgPool2d", "BCELoss", "BCEWithLogits", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
           "BinaryCrossEntropy", "CategoricalCrossEntropy", "Conv2d", "Conv2dTranspose", "CrossEntropyLoss",
           "Dense", "Dropout", "Flatten", "GlobalAvgPool2d", "History", "LayerNorm", "LeakyReLU", "Linear",
           "LogSoftmax", "Loss", "MSE", "MSELoss", "MaxPool2d", "Model", "Module", "Parameter", "ReLU",
           "SSE", "Sequential", "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "Tanh", "functional", "init",
           "load_json", "register_module", "save_json"]
