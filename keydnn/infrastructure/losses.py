"""Losses as functions, as Modules (callables with a ``reduction``) and under the seed's Function-style
names (SSEFn, MSEFn, BinaryCrossEntropyFn, CategoricalCrossEntropyFn). All are compositions of Tensor ops,
except softmax cross-entropy, which uses the fused ``ops.loss`` kernel.

Reductions: MSE and the binary cross-entropies reduce over every element (as PyTorch); SSE and the
categorical cross-entropies first sum over a sample's features / classes, then reduce over samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import ArgumentError, DTypeError, ShapeError
from keydnn.infrastructure.autograd import no_grad
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.activation import log_softmax
from keydnn.infrastructure.ops.loss import softmax_cross_entropy as _softmax_xent_per_sample
from keydnn.infrastructure.ops.shape import stack
from keydnn.infrastructure.tensor._tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _target(op: str, pred: Tensor, target: Any) -> Tensor:
    """The target as a Tensor on pred's device with pred's dtype and shape (ndarrays are converted)."""
    if not isinstance(pred, Tensor):
        raise DTypeError(op, f"prediction must be a Tensor, got {type(pred).__name__}")
    if not isinstance(target, Tensor):
        target = Tensor(data=np.asarray(target), dtype=pred.dtype, device=pred.device)
    elif target.dtype != pred.dtype:
        target = target.astype(pred.dtype)
    if target.shape != pred.shape:
        raise ShapeError(op, f"prediction shape {pred.shape} != target shape {target.shape}", pred, target)
    return target


def _reduce(op: str, per: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    if reduction == "none":
        return per
    raise ArgumentError(op, f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _per_sample_sum(t: Tensor) -> Tensor:
    return t.sum(axis=tuple(range(1, t.ndim))) if t.ndim > 1 else t


def sse(pred: Tensor, target: Any, reduction: str = "sum") -> Tensor:
    """Sum of squared errors per sample, summed (default) or averaged over samples."""
    d = pred - _target("sse", pred, target)
    return _reduce("sse", _per_sample_sum(d * d), reduction)


def mse(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum) of squared errors over every element."""
    d = pred - _target("mse", pred, target)
    return _reduce("mse", d * d, reduction)


def _check_probabilities(op: str, pred: Tensor) -> None:
    """Probabilities outside [0, 1] (or NaN) raise, as in PyTorch: clipping them would hide a wrong model
    head (a missing sigmoid) behind a finite loss."""
    if pred.numel() == 0:
        return
    with no_grad():
        lo, hi = float(pred.min().item()), float(pred.max().item())
    if not (lo >= 0.0 and hi <= 1.0):
        raise ShapeError(op, f"expects probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; for logits "
                         "use from_logits=True / binary_cross_entropy_with_logits", pred)


def binary_cross_entropy(pred: Tensor, target: Any, reduction: str = "mean", eps: float = 1e-7) -> Tensor:
    """-[t log p + (1-t) log(1-p)] on probabilities in [0, 1] (others raise ShapeError), with p clipped to
    [eps, 1-eps] so log stays finite."""
    t = _target("binary_cross_entropy", pred, target)
    _check_probabilities("binary_cross_entropy", pred)
    p = pred.clip(eps, 1.0 - eps)
    return _reduce("binary_cross_entropy", -(t * p.log() + (1.0 - t) * (1.0 - p).log()), reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """BCE on logits z, stable for any |z|: log sigma(z) and log(1 - sigma(z)) = log sigma(-z) come from a
    log-softmax over [0, z], whose gradient is exactly sigma(z) - t (no kink at z = 0)."""
    t = _target("binary_cross_entropy_with_logits", logits, target)
    zero = Tensor.zeros(logits.shape, logits.device, dtype=logits.dtype)
    # [..., 0] = log(1 - sigma(z)), [..., 1] = log sigma(z)
    logp = log_softmax(stack([zero, logits], axis=-1), axis=-1)
    loss = -(t * logp[..., 1] + (1.0 - t) * logp[..., 0])
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


def categorical_cross_entropy(pred: Tensor, target: Any, reduction: str = "mean",
                              eps: float = 1e-7) -> Tensor:
    """-sum_c t_c log p_c per sample, on probabilities (N, C) and one-hot / soft targets (N, C)."""
    t = _target("categorical_cross_entropy", pred, target)
    return _reduce("categorical_cross_entropy", _per_sample_sum(-(t * pred.clip(eps, 1.0).log())), reduction)


def sparse_categorical_cross_entropy(pred: Tensor, labels: Any, reduction: str = "mean",
                                     eps: float = 1e-7) -> Tensor:
    """-log p[label] per sample, on probabilities (N, C) and integer class labels (N,), as Keras's
    ``sparse_categorical_crossentropy`` (p clipped to [eps, 1] so log stays finite)."""
    op = "sparse_categorical_cross_entropy"
    if not isinstance(pred, Tensor) or pred.ndim != 2:
        raise ShapeError(op, "expects probabilities of shape (N, C)", *([pred] if isinstance(pred, Tensor) else []))
    if not isinstance(labels, Tensor):
        labels = Tensor(data=np.asarray(labels), device=pred.device)
    if labels.dtype.kind not in "iu" or labels.shape != pred.shape[:1]:
        raise DTypeError(op, f"labels must be integer class indices of shape ({pred.shape[0]},)", pred, labels)
    onehot = (labels.reshape((-1, 1)) == Tensor.arange(pred.shape[1], device=pred.device)).astype(pred.dtype)
    return _reduce(op, -(onehot * pred.clip(eps, 1.0).log()).sum(axis=1), reduction)


def softmax_cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of softmax(logits) (N, C) against int64 class labels (N,), fused and stable.

    Float targets of shape (N, C) (one-hot or soft labels) are accepted and use -sum t log_softmax(z).
    """
    op = "softmax_cross_entropy"
    if not isinstance(labels, Tensor):
        arr = np.asarray(labels)
        labels = Tensor(data=arr, dtype=np.int64 if arr.dtype.kind in "iu" else logits.dtype,
                        device=logits.device)
    if labels.dtype.kind == "f":
        t = _target(op, logits, labels)
        return _reduce(op, _per_sample_sum(-(t * log_softmax(logits, -1))), reduction)
    if labels.dtype.kind not in "iu":
        raise DTypeError(op, f"labels must be int64 class indices or float targets, got {labels.dtype}",
                         labels)
    return _reduce(op, _softmax_xent_per_sample(logits, labels), reduction)


cross_entropy = softmax_cross_entropy


class Loss(Module):
    """A loss as a Module: ``loss(pred, target)`` returns a scalar Tensor (per-sample with 'none')."""

    default_reduction = "mean"

    def __init__(self, reduction: str | None = None) -> None:
        super().__init__()
        reduction = self.default_reduction if reduction is None else reduction
        if reduction not in REDUCTIONS:
            raise ArgumentError(type(self).__name__, f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    @property
    def __name__(self) -> str:  # so Model logs and metric tables can name a loss object
        return type(self).__name__

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction}


class SSE(Loss):
    default_reduction = "sum"

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return sse(pred, target, self.reduction)


class MSE(Loss):
    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return mse(pred, target, self.reduction)


class BinaryCrossEntropy(Loss):
    """BCE on probabilities (clipped to [eps, 1-eps]; outside [0, 1] raises), or on logits with
    ``from_logits=True`` (as Keras's ``BinaryCrossentropy``)."""

    def __init__(self, reduction: str | None = None, eps: float = 1e-7, *, from_logits: bool = False) -> None:
        super().__init__(reduction)
        self.eps, self.from_logits = float(eps), bool(from_logits)

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        if self.from_logits:
            return binary_cross_entropy_with_logits(pred, target, self.reduction)
        return binary_cross_entropy(pred, target, self.reduction, self.eps)

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction, "eps": self.eps, "from_logits": self.from_logits}


class BCEWithLogits(Loss):
    """BCE on logits, numerically stable."""

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(logits, target, self.reduction)


class CategoricalCrossEntropy(BinaryCrossEntropy):
    """Cross-entropy on probabilities (N, C) and one-hot targets (N, C); on logits with ``from_logits=True``
    (softmax applied inside, fused and stable), as Keras's ``CategoricalCrossentropy``."""

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        if self.from_logits:
            return softmax_cross_entropy(pred, _target("categorical_cross_entropy", pred, target), self.reduction)
        return categorical_cross_entropy(pred, target, self.reduction, self.eps)


class SparseCategoricalCrossEntropy(BinaryCrossEntropy):
    """Cross-entropy on probabilities (N, C) and integer labels (N,); on logits with ``from_logits=True``
    (the fused softmax cross-entropy), as Keras's ``SparseCategoricalCrossentropy``."""

    def forward(self, pred: Tensor, labels: Any) -> Tensor:
        if self.from_logits:
            return softmax_cross_entropy(pred, labels, self.reduction)
        return sparse_categorical_cross_entropy(pred, labels, self.reduction, self.eps)


class SoftmaxCrossEntropy(Loss):
    """Fused softmax + cross-entropy on logits (N, C) with int64 labels (N,)."""

    def forward(self, logits: Tensor, labels: Any) -> Tensor:
        return softmax_cross_entropy(logits, labels, self.reduction)


CrossEntropyLoss = SoftmaxCrossEntropy
MSELoss = MSE
BCELoss = BinaryCrossEntropy
BCEWithLogitsLoss = BCEWithLogits
BinaryCrossentropy = BinaryCrossEntropy  # Keras's spellings
CategoricalCrossentropy = CategoricalCrossEntropy
SparseCategoricalCrossentropy = SparseCategoricalCrossEntropy


class _LossFn:
    """The seed's Function-style loss: ``forward(ctx, pred, target)`` returns a scalar Tensor whose graph
    already backpropagates; ``backward(ctx, g)`` gives the closed-form (grad_pred, grad_target) from what
    forward saved on ``ctx`` (any object with a ``save`` method or attributes, or None)."""

    @classmethod
    def forward(cls, ctx: Any, pred: Tensor, target: Any) -> Tensor:
        target = _target(cls.__name__, pred, target)
        if ctx is not None:
            ctx.saved = (pred.detach(), target.detach())
        return cls.loss(pred, target)

    @classmethod
    def apply(cls, pred: Tensor, target: Any) -> Tensor:
        return cls.forward(None, pred, target)

    @classmethod
    def backward(cls, ctx: Any, grad_out: Any) -> tuple[Tensor, Tensor | None]:
        pred, target = ctx.saved
        g = cls.grad(pred, target) * (grad_out.detach() if isinstance(grad_out, Tensor) else float(grad_out))
        return g, (-g if cls.target_grad else None)

    target_grad = False

    @staticmethod
    def loss(pred: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    @staticmethod
    def grad(pred: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError


class SSEFn(_LossFn):
    target_grad = True
    loss = staticmethod(lambda p, t: sse(p, t, "sum"))
    grad = staticmethod(lambda p, t: (p - t) * 2.0)


class MSEFn(_LossFn):
    """Mean over all elements, as in the seed."""

    target_grad = True
    loss = staticmethod(lambda p, t: mse(p, t, "mean"))
    grad = staticmethod(lambda p, t: (p - t) * (2.0 / p.numel()))


class BinaryCrossEntropyFn(_LossFn):
    loss = staticmethod(lambda p, t: binary_cross_entropy(p, t, "mean"))
    grad = staticmethod(lambda p, t: _bce_grad(p, t))


class CategoricalCrossEntropyFn(_LossFn):
    """-sum t log p / N, as in the seed."""

    loss = staticmethod(lambda p, t: categorical_cross_entropy(p, t, "mean"))
    grad = staticmethod(lambda p, t: -(t / p.clip(1e-7, 1.0)) * (1.0 / p.shape[0]) * (p > 1e-7))


def _bce_grad(p: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    inside = (p > eps) * (p < 1.0 - eps)  # the clip passes no gradient outside [eps, 1 - eps]
    pc = p.clip(eps, 1.0 - eps)
    return (pc - t) / (pc * (1.0 - pc)) * (1.0 / p.numel()) * inside


# Keras's names keep Keras's meaning: the *_crossentropy names take probabilities (pass a loss object with
# from_logits=True for logits); the PyTorch-style names cross_entropy / softmax_cross_entropy take logits.
LOSSES = {"sse": SSE, "mse": MSE, "mean_squared_error": MSE,
          "binary_crossentropy": BinaryCrossEntropy, "bce": BinaryCrossEntropy, "bce_with_logits": BCEWithLogits,
          "categorical_crossentropy": CategoricalCrossEntropy,
          "sparse_categorical_crossentropy": SparseCategoricalCrossEntropy,
          "softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy}


def get_loss(loss: Any) -> Any:
    """A callable loss from a loss object, a class or a name in ``LOSSES``."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ArgumentError("get_loss", f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        return LOSSES[loss]()
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, type) and issubclass(loss, _LossFn):
        return loss.apply
    if not callable(loss):
        raise TypeError(f"loss must be callable or a name, got {type(loss).__name__}")
    return loss


__all__ = ["BCELoss", "BCEWithLogits", "BCEWithLogitsLoss", "BinaryCrossEntropy", "BinaryCrossEntropyFn",
           "BinaryCrossentropy", "CategoricalCrossEntropy", "CategoricalCrossEntropyFn", "CategoricalCrossentropy",
           "CrossEntropyLoss", "LOSSES", "Loss", "MSE", "MSEFn", "MSELoss", "SSE", "SSEFn", "SoftmaxCrossEntropy",
           "SparseCategoricalCrossEntropy", "SparseCategoricalCrossentropy", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "categorical_cross_entropy", "cross_entropy", "get_loss", "mse",
           "softmax_cross_entropy", "sparse_categorical_cross_entropy", "sse"]
