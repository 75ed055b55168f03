"""KeyDNN's exception hierarchy. Every error a user can provoke is one of these and names the op."""

from __future__ import annotations

from typing import Any, NamedTuple


class KeyDNNError(Exception):
    """Base of every KeyDNN error."""


def describe(*operands: Any) -> str:
    """'shape=(2, 3) dtype=float32 device=cpu' for each Tensor-like operand (scalars as their repr)."""
    parts = []
    for i, t in enumerate(operands):
        if hasattr(t, "shape") and hasattr(t, "dtype"):
            dev = getattr(t, "device", "?")
            parts.append(f"#{i}: shape={tuple(t.shape)} dtype={t.dtype} device={dev}")
        elif isinstance(t, (tuple, list, dict)):  # a container's contents (a layer's whole state) is noise
            parts.append(f"#{i}: {type(t).__name__} of {len(t)}")
        else:
            r = repr(t)
            parts.append(f"#{i}: {r if len(r) <= 80 else type(t).__name__}")
    return "; ".join(parts)


class Operand(NamedTuple):
    """What an error says about an operand, kept without the operand (and its memory) itself."""

    shape: tuple
    dtype: Any
    device: Any


class OpError(KeyDNNError):
    """An op was called with inputs it cannot take. ``op`` names it; the message names the operands."""

    def __init__(self, op: str, message: str, *operands: Any) -> None:
        self.op = op
        detail = f" [{describe(*operands)}]" if operands else ""
        super().__init__(f"{op}: {message}{detail}")


class ShapeError(OpError, ValueError):
    """Shapes that do not fit the op (broadcasting, matmul inner sizes, a bad reshape, ...)."""


class DTypeError(OpError, TypeError):
    """Operands of different or unsupported dtypes."""


class DeviceMismatchError(OpError, RuntimeError):
    """Operands on different devices: KeyDNN never moves data implicitly."""


class AxisError(OpError, IndexError):
    """An axis outside the operand's dimensions."""


class DeviceNotSupportedError(KeyDNNError, RuntimeError):
    """The op or feature is not available on this device (e.g. CUDA without a GPU)."""

    def __init__(self, op: str, device: Any, reason: str = "") -> None:
        self.op, self.device = op, device
        super().__init__(f"{op}: not available on device {device}" + (f" ({reason})" if reason else ""))


class AutogradError(KeyDNNError, RuntimeError):
    """Misuse of the autograd engine (non-scalar backward without a gradient, a freed graph, ...)."""


class NativeLibraryError(KeyDNNError, RuntimeError):
    """A native library (KeyDNN's CPU or CUDA library, cudart, cuBLAS, cuDNN) reported an error."""

    def __init__(self, library: str, op: str, message: str, code: int | None = None) -> None:
        self.library, self.op, self.code = library, op, code
        suffix = f" (code {code})" if code is not None else ""
        super().__init__(f"{op}: {library} error: {message}{suffix}")


class GraphCaptureError(OpError, RuntimeError):
    """A CUDA graph capture met something a replay cannot repeat (a host read-back, a copy of host data, a
    synchronisation, a random draw seeded on the host), or a graph was used wrongly (replay before capture)."""


class SerializationError(KeyDNNError, ValueError):
    """A checkpoint that is malformed, of an unknown format or type, or does not match the model."""


class ArgumentError(OpError, ValueError):
    """An argument outside what the call documents that is not a shape: a rate, eps, a mode or name, fit's
    ``verbose``, a call with nothing to compute. (Sizes such as channels or kernel sizes are ShapeErrors.)"""


class IndexingError(OpError, IndexError):
    """An index out of range or of an unsupported kind."""


class DistributedError(KeyDNNError, RuntimeError):
    """A distributed run went wrong: a rank exited or timed out, ranks disagree, a collective was misused."""


class OutOfMemoryError(OpError, MemoryError):
    """An op or factory could not allocate its result (host memory; CUDA reports through its own errors)."""


def wrap_kernel_error(op: str, error: Exception, *operands: Any) -> Exception:
    """A KeyDNN error naming ``op`` and its operands for an error a kernel (NumPy) raised, keeping the
    built-in base class so ``except ValueError`` and the like still catch it."""
    if isinstance(error, MemoryError):
        return OutOfMemoryError(op, f"out of memory ({error})", *operands)
    for base, cls in ((ValueError, ShapeError), (TypeError, DTypeError), (IndexError, IndexingError)):
        if isinstance(error, base):
            return cls(op, str(error), *operands)
    return OpError(op, f"{type(error).__name__}: {error}", *operands)
