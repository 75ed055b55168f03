"""Functional forms of layers and losses (stateless calls on Tensors)."""

from keydnn.infrastructure.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    cross_entropy,
    mse,
    softmax_cross_entropy,
    sparse_categorical_cross_entropy,
    sse,
)
from keydnn.infrastructure.ops.activation import dropout, log_softmax, softmax
from keydnn.infrastructure.ops.conv import conv2d, conv_transpose2d
from keydnn.infrastructure.ops.elementwise import leaky_relu, relu, sigmoid, tanh
from keydnn.infrastructure.ops.linalg import linear
from keydnn.infrastructure.ops.norm import batch_norm, layer_norm
from keydnn.infrastructure.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d

__all__ = ["avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "categorical_cross_entropy", "conv2d", "conv_transpose2d", "cross_entropy", "dropout",
           "global_avg_pool2d", "layer_norm", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse",
           "relu", "sigmoid", "softmax", "softmax_cross_entropy", "sparse_categorical_cross_entropy", "sse", "tanh"]
