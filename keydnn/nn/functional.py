"""Functional forms of layers and losses (stateless calls on Tensors)."""

from keydnn.infrastructure.losses import (
                                          binary_cross_entropy,
                                          binary_cross_entropy_with_logits,
                                          categorical_cross_entropy,
                                          cross_entropy,
                                          mse,
                                          softmax_cross_entropy,
                                          sse,
)
from keydnn.infrastructure.ops.activation import dropout, log_softmax, softmax
from keydnn.infrastructure.ops.elementwise import leaky_relu, relu, sigmoid, tanh
from keydnn.infrastructure.ops.linalg import linear

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "categorical_cross_entropy",
           "cross_entropy", "dropout", "leaky_relu", "linear", "log_softmax", "mse", "relu", "sigmoid",
           "softmax", "softmax_cross_entropy", "sse", "tanh"]
