"""Seed import path (README): activation layers."""

from keydnn.infrastructure.nn.activations import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
