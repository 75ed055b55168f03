"""Weight initializers (Kaiming/Xavier normal and uniform, zeros, ones) and the seed's registry of named
initializers (``WeightInitializer``). All fill a tensor in place from KeyDNN's seeded random stream."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

from keydnn.domain.errors import ArgumentError, ShapeError
from keydnn.infrastructure.autograd import no_grad
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.tensor._tensor import Tensor

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def calculate_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out): 1-d (n, n); 2-d (out, in) -> (in, out); >= 3-d weight (out, in, *k) -> products."""
    if len(shape) == 0:
        raise ShapeError("initializer", "cannot compute fans of a 0-d tensor")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str = "linear", negative_slope: float = 0.01) -> float:
    """The recommended std gain for a nonlinearity (as ``torch.nn.init.calculate_gain``)."""
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + negative_slope**2))
    if nonlinearity not in _GAINS:
        raise ArgumentError("gain", f"unknown nonlinearity {nonlinearity!r}; expected one of "
                            f"{sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def _overwrite(tensor: Tensor, values: Any) -> Tensor:
    """Write ``values`` (storage on the tensor's device) into ``tensor`` in place, outside any graph."""
    with no_grad():
        kernels_for(tensor.device).copyto(tensor.data, values)
        tensor._version += 1  # earlier graphs that saved this tensor must not backprop through new values
    return tensor


def normal_(tensor: Tensor, std: float = 1.0, mean: float = 0.0) -> Tensor:
    r = Tensor.randn(tensor.shape, tensor.device, dtype=tensor.dtype)
    return _overwrite(tensor, (r * std + mean).data)


def uniform_(tensor: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    r = Tensor.rand(tensor.shape, tensor.device, dtype=tensor.dtype)
    return _overwrite(tensor, (r * (high - low) + low).data)


def zeros_(tensor: Tensor) -> Tensor:
    return _overwrite(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return _overwrite(tensor, 1)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "relu") -> Tensor:
    """N(0, gain / sqrt(fan)): He initialisation for ReLU-family layers."""
    return normal_(tensor, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "relu") -> Tensor:
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, gain * sqrt(2 / (fan_in + fan_out))): Glorot initialisation."""
    fan_in, fan_out = calculate_fans(tensor.shape)
    return normal_(tensor, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = calculate_fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentError("initializer", f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fans(tensor.shape)
    return fan_in if mode == "fan_in" else fan_out


class WeightInitializer:
    """A named initializer: ``WeightInitializer("kaiming")(tensor)`` fills ``tensor`` in place.

    The registry holds the seed's names (zeros, ones, kaiming, kaiming_relu, kaiming_leaky_relu_0.2/_0.01,
    xavier, xavier_uniform, xavier_relu, xavier_tanh, xavier_leaky_relu_0.2/_0.01) and explicit ones
    (kaiming_normal, kaiming_uniform, xavier_normal). ``register_initializer`` adds more.
    """

    _registry: ClassVar[dict[str, Callable[[Tensor], Tensor]]] = {}

    def __init__(self, name: str) -> None:
        if name not in self._registry:
            raise ArgumentError("WeightInitializer", f"unknown initializer {name!r}; available: {self.available()}")
        self.name = name
        self._fn = self._registry[name]

    def __call__(self, tensor: Tensor) -> Tensor:
        return self._fn(tensor)

    def __repr__(self) -> str:
        return f"WeightInitializer({self.name!r})"

    @classmethod
    def register_initializer(cls, name: str, *, overwrite: bool = False) -> Callable:
        """Decorator registering ``fn(tensor)`` under ``name``; ValueError on an empty or duplicate name."""
        if not isinstance(name, str) or not name:
            raise ArgumentError("WeightInitializer.register_initializer", "name must be a non-empty string")
        if name in cls._registry and not overwrite:
            raise ArgumentError("WeightInitializer.register_initializer", f"{name!r} is already registered "
                                "(pass overwrite=True to replace it)")

        def decorate(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
            cls._registry[name] = fn
            return fn
        return decorate

    @classmethod
    def available(cls) -> list[str]:
        return sorted(cls._registry)

    @classmethod
    def get(cls, name: str) -> WeightInitializer:
        return cls(name)


def register_kaiming_leaky_relu(name: str, *, negative_slope: float) -> None:
    WeightInitializer.register_initializer(name)(
        lambda t: kaiming_normal_(t, a=negative_slope, nonlinearity="leaky_relu"))


def register_xavier_leaky_relu(name: str, *, negative_slope: float) -> None:
    WeightInitializer.register_initializer(name)(
        lambda t: xavier_normal_(t, calculate_gain("leaky_relu", negative_slope)))


def _register_defaults() -> None:
    reg = WeightInitializer.register_initializer
    reg("zeros")(zeros_)
    reg("ones")(ones_)
    for name in ("kaiming", "kaiming_relu", "kaiming_normal"):
        reg(name)(kaiming_normal_)
    reg("kaiming_uniform")(kaiming_uniform_)
    reg("xavier")(xavier_normal_)
    reg("xavier_normal")(xavier_normal_)
    reg("xavier_uniform")(xavier_uniform_)
    reg("xavier_relu")(lambda t: xavier_normal_(t, calculate_gain("relu")))
    reg("xavier_tanh")(lambda t: xavier_normal_(t, calculate_gain("tanh")))
    for slope in (0.2, 0.01):
        register_kaiming_leaky_relu(f"kaiming_leaky_relu_{slope}", negative_slope=slope)
        register_xavier_leaky_relu(f"xavier_leaky_relu_{slope}", negative_slope=slope)


_register_defaults()

__all__ = ["WeightInitializer", "calculate_fans", "calculate_gain", "kaiming_normal_", "kaiming_uniform_",
           "normal_", "ones_", "register_kaiming_leaky_relu", "register_xavier_leaky_relu", "uniform_",
           "xavier_normal_", "xavier_uniform_", "zeros_"]
