"""Layers, containers and models: Module, Sequential, Model/History, Linear/Dense, activations, Flatten,
Dropout, convolution, pooling and normalisation layers."""

from keydnn.infrastructure.nn.activations import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from keydnn.infrastructure.nn.containers import Sequential
from keydnn.infrastructure.nn.conv import Conv2d, Conv2dTranspose
from keydnn.infrastructure.nn.layers import Dropout, Flatten
from keydnn.infrastructure.nn.linear import Dense, Linear
from keydnn.infrastructure.nn.model import History, Model
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from keydnn.infrastructure.nn.pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Conv2dTranspose", "Dense", "Dropout",
           "Flatten", "GlobalAvgPool2d", "History", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax",
           "MaxPool2d", "Model", "Module", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh"]
