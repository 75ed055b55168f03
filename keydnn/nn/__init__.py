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
    SparseCategoricalCrossEntropy,
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
from keydnn.infrastructure.recurrent import GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, RNNCell
from keydnn.infrastructure.serialization import load_json, register_module, save_json
from keydnn.nn import functional

__all__ = ["GRU", "LSTM", "MSE", "RNN", "SSE", "AvgPool2d", "BCELoss", "BCEWithLogits", "BCEWithLogitsLoss",
           "BatchNorm1d", "BatchNorm2d", "Bidirectional", "BinaryCrossEntropy", "CategoricalCrossEntropy",
           "Conv2d", "Conv2dTranspose", "CrossEntropyLoss", "Dense", "Dropout", "Flatten", "GRUCell",
           "GlobalAvgPool2d", "History", "LSTMCell", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax", "Loss",
           "MSELoss", "MaxPool2d", "Model", "Module", "Parameter", "RNNCell", "ReLU", "Sequential", "Sigmoid",
           "Softmax", "SoftmaxCrossEntropy", "SparseCategoricalCrossEntropy", "Tanh", "functional", "init",
           "load_json", "register_module", "save_json"]
