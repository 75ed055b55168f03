"""Device: where a tensor's storage lives ("cpu" or "cuda:N"). Instances are interned, so `is` compares."""

from __future__ import annotations

from enum import Enum


class DeviceType(str, Enum):
    CPU = "cpu"
    CUDA = "cuda"


class Device:
    """A device named "cpu" or "cuda:N" (a bare "cuda" means "cuda:0"). Equal devices are the same object."""

    __slots__ = ("type", "index", "_name")
    _interned: dict[str, Device] = {}

    def __new__(cls, name: str | Device = "cpu") -> Device:
        if isinstance(name, Device):
            return name
        cached = cls._interned.get(name)
        if cached is not None:
            return cached
        if not isinstance(name, str):
            raise TypeError(f"Device: expected 'cpu' or 'cuda:N', got {type(name).__name__}")
        text = name.strip().lower()
        if text == "cpu":
            dtype, index = DeviceType.CPU, None
        elif text == "cuda" or text.startswith("cuda:"):
            idx = text[5:] if text != "cuda" else "0"
            if not idx.isdigit():
                raise ValueError(f"Device: bad CUDA device {name!r}; expected 'cuda:N' with N >= 0")
            dtype, index = DeviceType.CUDA, int(idx)
        else:
            raise ValueError(f"Device: unknown device {name!r}; expected 'cpu' or 'cuda:N'")
        canonical = "cpu" if index is None else f"cuda:{index}"
        dev = cls._interned.get(canonical)
        if dev is None:
            dev = object.__new__(cls)
            object.__setattr__(dev, "type", dtype)
            object.__setattr__(dev, "index", index)
            object.__setattr__(dev, "_name", canonical)
            cls._interned[canonical] = dev
        cls._interned[name] = dev
        return dev

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Device is immutable")

    def __reduce__(self):
        return (Device, (self._name,))

    def is_cpu(self) -> bool:
        return self.type is DeviceType.CPU

    def is_cuda(self) -> bool:
        return self.type is DeviceType.CUDA

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"Device('{self._name}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except (TypeError, ValueError):
                return False
        return self is other

    def __hash__(self) -> int:
        return hash(self._name)


CPU = Device("cpu")
