"""Layers, containers and models: Module, Sequential, Model/History, Linear/Dense, activations, Flatten,
Dropout."""

from keydnn.infrastructure.nn.activations import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from keydnn.infrastructure.nn.containers import Sequential
from keydnn.infrastructure.nn.layers import Dropout, Flatten
from keydnn.infrastructure.nn.linear import Dense, Linear
from keydnn.infrastructure.nn.model import History, Model
from keydnn.infrastructure.nn.module import Module

__all__ = ["Dense", "Dropout", "Flatten", "History", "LeakyReLU", "Linear", "LogSoftmax", "Model", "Module",
           "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh"]
