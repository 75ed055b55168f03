"""The Tensor: storage (a NumPy array or a CudaArray), its device, ``requires_grad``, ``grad`` and the node
that made it. Operators and math methods are one-line calls into ``keydnn.infrastructure.ops``."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from keydnn.domain.device._device import CPU, Device
from keydnn.domain.dtypes import SUPPORTED_DTYPES
from keydnn.domain.errors import AutogradError, DTypeError, KeyDNNError, Operand, ShapeError, wrap_kernel_error
from keydnn.infrastructure import autograd
from keydnn.infrastructure.backends import kernels_for

_ALLOWED = {np.dtype(n) for n in SUPPORTED_DTYPES}
_seed_counter = itertools.count()
_rng = [np.random.default_rng()]


def manual_seed(seed: int) -> None:
    """Seed KeyDNN's random streams (initialisers, rand/randn, dropout) on every device."""
    _rng[0] = np.random.default_rng(seed)


def next_seed() -> int:
    return int(_rng[0].integers(0, 2**62))


def as_dtype(dtype: Any, op: str = "Tensor") -> np.dtype:
    dt = np.dtype(dtype if dtype is not None else np.float32)
    if dt not in _ALLOWED:
        raise DTypeError(op, f"unsupported dtype {dt}; KeyDNN tensors hold {', '.join(SUPPORTED_DTYPES)}")
    return dt


def _is_int(s: Any) -> bool:
    return isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_))


def _shape(shape: Any, op: str = "Tensor") -> tuple[int, ...]:
    """A shape as a tuple of ints; floats, bools and other values raise (they were once truncated)."""
    if _is_int(shape):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(op, f"a shape is an int or a sequence of ints, got {type(shape).__name__}") from None
    bad = [s for s in dims if not _is_int(s)]
    if bad:
        hint = ("; to make a tensor from values use keydnn.tensor(data) or Tensor(data=...)"
                if all(isinstance(s, (int, float, np.number)) for s in dims) else "")
        raise ShapeError(op, f"shape dimensions must be ints, got {list(dims)!r}{hint}")
    dims = tuple(int(s) for s in dims)
    if any(s < 0 for s in dims):
        raise ShapeError(op, f"negative dimension in shape {dims}")
    return dims


class Tensor:
    """An n-dimensional array with reverse-mode autograd, on the CPU or a CUDA device."""

    __slots__ = ("_data", "_device", "requires_grad", "grad", "_node", "_version", "_graph_ref",
                 "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to the Tensor's reflected operator

    def __init__(self, shape: Any = None, device: Any = None, *, requires_grad: bool = False,
                 ctx: Any = None, dtype: Any = None, data: Any = None) -> None:
        dev = Device(device) if device is not None else CPU
        k = kernels_for(dev)
        if data is not None:
            arr = _host_array(data)
            if dtype is None and arr.dtype.kind == "f" and not isinstance(data, np.ndarray):
                dtype = np.float32  # Python floats become float32, as in PyTorch
            arr = arr.astype(as_dtype(dtype if dtype is not None else _default_dtype(arr)), copy=False)
            if shape is not None and tuple(arr.shape) != _shape(shape):
                raise ShapeError("Tensor", f"data of shape {arr.shape} does not match shape {tuple(shape)}")
            storage = k.from_host(arr)
        else:
            if shape is None:
                raise ShapeError("Tensor", "give a shape or data")
            dims, dt = _shape(shape), as_dtype(dtype)
            storage = _allocate("Tensor", lambda: k.zeros(dims, dt), dims, dt, dev)
        self._data = storage
        self._device = dev
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = ctx
        self._version = 0
        if requires_grad and storage.dtype.kind != "f":
            raise DTypeError("Tensor", f"only float tensors can require grad, not {storage.dtype}")

    @classmethod
    def _make(cls, data: Any, device: Device, requires_grad: bool, node: Any) -> Tensor:
        t = object.__new__(Tensor)
        t._data = data
        t._device = device
        t.requires_grad = requires_grad
        t.grad = None
        t._node = node
        t._version = 0
        return t

    # ---- factories -------------------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, array: Any, *, device: Any = None, requires_grad: bool = False,
                   dtype: Any = None) -> Tensor:
        arr = np.asarray(array)
        return cls(device=device, data=arr, dtype=dtype if dtype is not None else _default_dtype(arr),
                   requires_grad=requires_grad)

    @classmethod
    def _filled(cls, shape: Any, value: Any, device: Any, requires_grad: bool, dtype: Any,
                op: str = "full") -> Tensor:
        dev = Device(device) if device is not None else CPU
        dims, dt = _shape(shape, op), as_dtype(dtype, op)
        data = _allocate(op, lambda: kernels_for(dev).full(dims, value, dt), dims, dt, dev)
        return cls._leaf(data, dev, requires_grad)

    @classmethod
    def _leaf(cls, data: Any, dev: Device, requires_grad: bool) -> Tensor:
        t = cls._make(data, dev, False, None)
        if requires_grad:
            t.requires_grad_()
        return t

    @classmethod
    def zeros(cls, shape: Any = None, device: Any = None, *, requires_grad: bool = False,
              dtype: Any = None) -> Tensor:
        return cls._filled(shape, 0, device, requires_grad, dtype, "zeros")

    @classmethod
    def ones(cls, shape: Any = None, device: Any = None, *, requires_grad: bool = False,
             dtype: Any = None) -> Tensor:
        return cls._filled(shape, 1, device, requires_grad, dtype, "ones")

    @classmethod
    def full(cls, shape: Any, fill_value: Any, device: Any = None, *, requires_grad: bool = False,
             dtype: Any = None) -> Tensor:
        return cls._filled(shape, fill_value, device, requires_grad, dtype)

    @classmethod
    def rand(cls, shape: Any, device: Any = None, *, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """U[0, 1) samples, drawn directly in ``dtype`` (float32 by default; no float64 intermediate)."""
        dev = Device(device) if device is not None else CPU
        dims, dt = _shape(shape, "rand"), _float_dtype(dtype, "rand")
        data = _allocate("rand", lambda: kernels_for(dev).uniform(dims, 0.0, 1.0, dt, next_seed()), dims, dt, dev)
        return cls._leaf(data, dev, requires_grad)

    @classmethod
    def randn(cls, shape: Any, device: Any = None, *, requires_grad: bool = False,
              dtype: Any = None) -> Tensor:
        """N(0, 1) samples, drawn directly in ``dtype`` (float32 by default; no float64 intermediate)."""
        dev = Device(device) if device is not None else CPU
        dims, dt = _shape(shape, "randn"), _float_dtype(dtype, "randn")
        data = _allocate("randn", lambda: kernels_for(dev).normal(dims, 0.0, 1.0, dt, next_seed()), dims, dt, dev)
        return cls._leaf(data, dev, requires_grad)

    @classmethod
    def arange(cls, start: float, stop: float | None = None, step: float = 1, *, device: Any = None,
               dtype: Any = None) -> Tensor:
        if stop is None:
            start, stop = 0, start
        if dtype is None:
            dtype = np.int64 if all(isinstance(v, (int, np.integer)) for v in (start, stop, step)) else None
        dev = Device(device) if device is not None else CPU
        if step == 0:
            raise ShapeError("arange", "step must not be zero")
        dt = as_dtype(dtype, "arange")
        data = _allocate("arange", lambda: kernels_for(dev).arange(start, stop, step, dt), (), dt, dev)
        return cls._make(data, dev, False, None)

    @classmethod
    def zeros_like(cls, t: Tensor, *, requires_grad: bool = False) -> Tensor:
        return cls.zeros(t.shape, t.device, requires_grad=requires_grad, dtype=t.dtype)

    @classmethod
    def ones_like(cls, t: Tensor, *, requires_grad: bool = False) -> Tensor:
        return cls.ones(t.shape, t.device, requires_grad=requires_grad, dtype=t.dtype)

    _from_numpy = from_numpy

    # ---- metadata --------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> Device:
        return self._device

    @property
    def data(self) -> Any:
        """The storage: a NumPy array on the CPU, a CudaArray on CUDA."""
        return self._data

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> str | None:
        return None if self._node is None else self._node.fn.__name__

    def numel(self) -> int:
        return math.prod(self._data.shape)

    def __len__(self) -> int:
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise ShapeError("bool", f"the truth value of a tensor of shape {self.shape} is ambiguous; reduce it "
                             "first (e.g. (t > 0).sum() > 0) or call .item() on a one-element tensor")
        return bool(self.item())

    # ---- data movement (copies between devices live in tensor/transfer.py) ------------------------
    def to_numpy(self) -> np.ndarray:
        """The values as an ndarray. From CUDA: a host copy. On the CPU, no copy is made: a tensor outside
        any graph gives its storage itself (writable, shared, as the seed and ``torch.Tensor.numpy``); a
        tensor whose memory is part of a graph (it requires grad, was computed by a recorded op, or is an
        input saved by a graph node not yet freed by backward) gives a **read-only view**, so a write
        cannot silently corrupt gradients. Copy it (``np.array(t.numpy())``) to get a writable array, or
        change the tensor itself with ``copy_from_numpy`` / ``fill`` under ``keydnn.no_grad()``."""
        host = kernels_for(self._device).to_host(self._data)
        if host is self._data and self._in_graph():
            host = host.view()
            host.flags.writeable = False
        return host

    def _in_graph(self) -> bool:
        if self.requires_grad or self._node is not None:
            return True
        ref = getattr(self, "_graph_ref", None)  # set by Function.apply when a recorded op takes this tensor
        node = ref() if ref is not None else None
        return node is not None and not node.freed

    def numpy(self) -> np.ndarray:
        """Same as ``to_numpy()`` (read-only view for a tensor in a graph; see there)."""
        return self.to_numpy()

    def tolist(self) -> Any:
        return self.to_numpy().tolist()

    def item(self) -> float | int | bool:
        if self.numel() != 1:
            raise ShapeError("item", f"needs exactly one element, tensor has shape {self.shape}")
        return self.to_numpy().reshape(()).item()

    def copy_from_numpy(self, array: Any) -> None:
        arr = np.asarray(array)
        if tuple(arr.shape) != self.shape:
            raise ShapeError("copy_from_numpy", f"array shape {arr.shape} != tensor shape {self.shape}")
        k = kernels_for(self._device)
        k.copyto(self._data, k.from_host(arr.astype(self.dtype, copy=False)))
        self._version += 1

    def copy_from(self, other: Tensor) -> None:
        if other.shape != self.shape:
            raise ShapeError("copy_from", "shapes differ", self, other)
        from keydnn.infrastructure.tensor.transfer import move
        kernels_for(self._device).copyto(self._data, move(other._data, other._device, self._device))
        self._version += 1

    def fill(self, value: Any) -> None:
        kernels_for(self._device).copyto(self._data, value)
        self._version += 1

    def to(self, device: Any, *, copy: bool = False) -> Tensor:
        from keydnn.infrastructure.tensor.transfer import to_device
        return to_device(self, Device(device), copy=copy)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Tensor:
        return self.to(f"cuda:{index}")

    # ---- autograd ----------------------------------------------------------------------------------
    def backward(self, grad: Any = None, *, retain_graph: bool = False) -> None:
        autograd.backward(self, grad, retain_graph=retain_graph)

    def detach(self) -> Tensor:
        return Tensor._make(self._data, self._device, False, None)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.dtype.kind != "f":
            raise DTypeError("requires_grad_", f"only float tensors can require grad, not {self.dtype}")
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        extras = f", dtype={self.dtype}, device={self._device}"
        if self.requires_grad:
            extras += ", requires_grad=True" + (f", grad_fn={self.grad_fn}" if self._node else "")
        if self.numel() > 1000:
            return f"Tensor(shape={self.shape}{extras})"
        body = np.array2string(self.to_numpy(), separator=", ", prefix="Tensor(", precision=4)
        return f"Tensor({body}{extras})"


def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, scalars, an ndarray or a Tensor), as
    ``torch.tensor``: Python floats become float32, ints int64, bools bool; an ndarray keeps its dtype."""
    if data is None:
        raise ShapeError("tensor", "data is required (use Tensor.zeros(shape) for a tensor of a given shape)")
    return Tensor(data=data, dtype=dtype, device=device, requires_grad=requires_grad)


def _host_array(data: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.to_numpy()
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as e:  # ragged nested lists and the like
        raise ShapeError("Tensor", f"cannot make a tensor from this data ({e})") from None
    if arr.dtype.kind == "O":
        raise DTypeError("Tensor", f"cannot make a tensor from data of type {type(data).__name__} "
                         "(ragged lists or non-numeric values)")
    return arr


def _allocate(op: str, make: Any, shape: tuple, dtype: np.dtype, device: Device) -> Any:
    """``make()``, with NumPy's MemoryError ("Unable to allocate ...") or size error as a KeyDNN error
    naming the factory, the shape, dtype and device."""
    try:
        return make()
    except KeyDNNError:
        raise
    except (MemoryError, ValueError) as e:
        raise wrap_kernel_error(op, e, Operand(shape, dtype, device)) from e


def _float_dtype(dtype: Any, op: str) -> np.dtype:
    dt = as_dtype(dtype, op)
    if dt.kind != "f":
        raise DTypeError(op, f"random tensors are floating point, got dtype {dt}")
    return dt


def _default_dtype(arr: np.ndarray) -> np.dtype:
    if arr.dtype.kind == "f":
        return arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    if arr.dtype.kind in "iu":
        return np.dtype(np.int64)
    if arr.dtype.kind == "b":
        return np.dtype(bool)
    raise DTypeError("Tensor", f"cannot hold data of dtype {arr.dtype}")


def _check_leaf_inplace(t: Tensor, op: str) -> None:
    if t.requires_grad and t._node is None and autograd.is_grad_enabled():
        raise AutogradError(f"{op}: in-place change of a leaf tensor that requires grad; wrap it in "
                            "keydnn.no_grad() (as optimizers do) or use an out-of-place op")


autograd.Tensor = Tensor
from keydnn.infrastructure.tensor import _methods  # noqa: E402,F401  (attaches operators and math methods)
