"""Parameter: a leaf Tensor that requires grad and that Modules register; optionally filled by a named
initializer."""

from __future__ import annotations

from typing import Any

from keydnn.domain.device._device import Device
from keydnn.infrastructure.autograd import no_grad
from keydnn.infrastructure.tensor._tensor import Tensor


class Parameter(Tensor):
    """A trainable tensor: ``Parameter(shape, device, requires_grad=True, initializer=None, dtype=, data=)``.

    ``Parameter(data=tensor_or_array)`` wraps existing values (copied). A named ``initializer`` (see
    ``keydnn.infrastructure.initializers``) fills it in place; an unknown name raises ValueError.
    """

    __slots__ = ("_initializer",)

    def __init__(self, shape: Any = None, device: Any = None, *, requires_grad: bool = True,
                 initializer: str | None = None, dtype: Any = None, data: Any = None) -> None:
        if isinstance(data, Tensor) and dtype is None:
            dtype = data.dtype
        super().__init__(shape, device if device is not None or not isinstance(data, Tensor) else data.device,
                         requires_grad=requires_grad, dtype=dtype, data=data)
        self._initializer = initializer
        if initializer is not None:
            from keydnn.infrastructure.initializers import WeightInitializer
            WeightInitializer(initializer)(self)

    @property
    def initializer(self) -> str:
        if self._initializer is None:
            raise ValueError("Parameter: no initializer was given for this parameter")
        return self._initializer

    def set_grad(self, grad: Tensor | None) -> None:
        """Replace the gradient (None clears it)."""
        self.grad = grad

    def accumulate_grad(self, grad: Tensor) -> None:
        """Add ``grad`` to the stored gradient, out of place (a stored gradient may be shared)."""
        with no_grad():
            self.grad = grad.detach() if self.grad is None else self.grad + grad

    def move_(self, device: Any) -> Parameter:
        """Move storage (and gradient) to ``device`` in place, keeping this object's identity, so
        optimizers holding it stay valid."""
        dev = Device(device)
        if dev is not self.device:
            with no_grad():
                moved = self.to(dev)
                grad = self.grad.to(dev) if self.grad is not None else None
            self._data, self._device, self.grad = moved._data, dev, grad
            self._version += 1
        return self

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]
