"""Tensor's operators and math methods: each is a one-line call into an op family."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure import autograd
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.ops import activation as act
from keydnn.infrastructure.ops import elementwise as ew
from keydnn.infrastructure.ops import index as ix
from keydnn.infrastructure.ops import linalg as la
from keydnn.infrastructure.ops import reduce as rd
from keydnn.infrastructure.ops import shape as sh
from keydnn.infrastructure.ops._util import binary_operands
from keydnn.infrastructure.tensor._tensor import Tensor, _check_leaf_inplace

_KERNEL = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}


def _inplace(self: Tensor, other: Any, name: str) -> Tensor:
    """``self op= other``: truly in place when no graph is recorded; otherwise recorded out of place and
    rebound, so tensors saved by earlier graph nodes are never overwritten."""
    op = getattr(ew, name)
    tracked = autograd.is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False))
    if tracked:
        _check_leaf_inplace(self, f"__i{name}__")
        old = Tensor._make(self._data, self._device, self.requires_grad, self._node)
        res = op(old, old if other is self else other)  # the graph must never hold the rebound object
        if res.shape != self.shape or res.dtype != self.dtype:
            raise ShapeError(f"__i{name}__", f"result shape {res.shape} != {self.shape}", self, other)
        self._data, self._node, self.requires_grad = res._data, res._node, True
    else:
        a, b = binary_operands(self, other, f"__i{name}__")
        if a is not self:
            raise DTypeError(f"__i{name}__", "cannot change the dtype of a tensor in place", self, other)
        if isinstance(b, Tensor):
            if b.device is not self.device:
                from keydnn.domain.errors import DeviceMismatchError
                raise DeviceMismatchError(f"__i{name}__", "operands are on different devices", self, b)
            if sh.broadcast_shape(self.shape, b.shape, f"__i{name}__", self, b) != self.shape:
                raise ShapeError(f"__i{name}__", f"cannot broadcast {b.shape} into {self.shape}", self, b)
            b = b._data
        getattr(kernels_for(self._device), _KERNEL[name])(self._data, b, out=self._data)
    self._version += 1
    return self


def _rsub(self: Tensor, other: Any) -> Tensor:
    return ew.sub(other, self)


def _rdiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(other, self)


def _rpow(self: Tensor, other: Any) -> Tensor:
    return ew.pow(other, self)


def _reshape(self: Tensor, *shape: Any) -> Tensor:
    return sh.reshape(self, *shape)


def _transpose(self: Tensor, *axes: Any, **dims: Any) -> Tensor:
    return sh.transpose(self, *axes, **dims) if len(axes) != 1 else sh.permute(self, axes[0])


_METHODS = {
    "__add__": ew.add, "__radd__": lambda s, o: ew.add(o, s), "__sub__": ew.sub, "__rsub__": _rsub,
    "__mul__": ew.mul, "__rmul__": lambda s, o: ew.mul(o, s), "__truediv__": ew.div, "__rtruediv__": _rdiv,
    "__div__": ew.div, "__pow__": ew.pow, "__rpow__": _rpow, "__neg__": ew.neg, "__abs__": ew.abs,
    "__matmul__": la.matmul, "__rmatmul__": lambda s, o: la.matmul(o, s),
    "__eq__": ew.eq, "__ne__": ew.ne, "__lt__": ew.lt, "__le__": ew.le, "__gt__": ew.gt, "__ge__": ew.ge,
    "__iadd__": lambda s, o: _inplace(s, o, "add"), "__isub__": lambda s, o: _inplace(s, o, "sub"),
    "__imul__": lambda s, o: _inplace(s, o, "mul"), "__itruediv__": lambda s, o: _inplace(s, o, "div"),
    "__getitem__": ix.getitem, "__setitem__": ix.setitem,
    "matmul": la.matmul, "exp": ew.exp, "log": ew.log, "sqrt": ew.sqrt, "tanh": ew.tanh,
    "sigmoid": ew.sigmoid, "relu": ew.relu, "abs": ew.abs, "clip": ew.clip, "leaky_relu": ew.leaky_relu,
    "maximum": ew.maximum, "minimum": ew.minimum, "astype": ew.astype,
    "sum": rd.sum, "mean": rd.mean, "max": rd.max, "min": rd.min, "argmax": rd.argmax,
    "reshape": _reshape, "view": _reshape, "permute": sh.permute, "transpose": _transpose,
    "squeeze": sh.squeeze, "unsqueeze": sh.unsqueeze, "flatten": sh.flatten, "broadcast_to": sh.broadcast_to,
    "softmax": act.softmax, "log_softmax": act.log_softmax,
    "clone": lambda s: ew.Cast.apply(s, dtype=s.dtype),
    "float": lambda s: ew.astype(s, "float32"), "double": lambda s: ew.astype(s, "float64"),
    "long": lambda s: ew.astype(s, "int64"),
}

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)

Tensor.T = property(lambda s: sh.transpose(s))
Tensor.stack = staticmethod(sh.stack)
Tensor.concat = staticmethod(sh.concat)
Tensor.sum_to_shape = sh.sum_to_shape
