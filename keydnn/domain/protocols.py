"""Domain contracts as structural Protocols: what callers rely on, nothing more. No NumPy, no ctypes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ITensor(Protocol):
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> Any: ...
    @property
    def device(self) -> Any: ...
    requires_grad: bool
    grad: Any

    def backward(self, grad: Any = None) -> None: ...
    def to_numpy(self) -> Any: ...
    def numel(self) -> int: ...


@runtime_checkable
class IParameter(ITensor, Protocol):
    def zero_grad(self) -> None: ...


@runtime_checkable
class IModule(Protocol):
    training: bool

    def forward(self, *args: Any, **kwargs: Any) -> Any: ...
    def parameters(self) -> Iterator[Any]: ...
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Any]]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def get_config(self) -> dict[str, Any]: ...


@runtime_checkable
class IOptimizer(Protocol):
    params: list[Any]

    def step(self) -> None: ...
    def zero_grad(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class ILoss(Protocol):
    def __call__(self, prediction: Any, target: Any) -> Any: ...


@runtime_checkable
class IInitializer(Protocol):
    def __call__(self, tensor: Any) -> Any: ...


@runtime_checkable
class IDataBatches(Protocol):
    def __iter__(self) -> Iterator[tuple[Any, Any]]: ...


__all__ = ["IDataBatches", "IInitializer", "ILoss", "IModule", "IOptimizer", "IParameter", "ITensor",
           "Iterable"]
