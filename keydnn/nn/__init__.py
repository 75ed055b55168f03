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
                                          Dense,
                                          Dropout,
                                          Flatten,
                                          History,
                                          LeakyReLU,
                                          Linear,
                                          LogSoftmax,
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

__all__ = ["BCELoss", "BCEWithLogits", "BCEWithLogitsLoss", "BinaryCrossEntropy", "CategoricalCrossEntropy",
           "CrossEntropyLoss", "Dense", "Dropout", "Flatten", "History", "LeakyReLU", "Linear", "LogSoftmax",
           "Loss", "MSE", "MSELoss", "Model", "Module", "Parameter", "ReLU", "SSE", "Sequential", "Sigmoid",
           "Softmax", "SoftmaxCrossEntropy", "Tanh", "functional", "init", "load_json", "register_module",
           "save_json"]
