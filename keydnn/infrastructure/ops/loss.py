"""Loss ops that need a fused kernel: softmax cross-entropy on logits with integer labels, and BCE on logits."""

from __future__ import annotations

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import require_float
from keydnn.infrastructure.tensor._tensor import Tensor


class SoftmaxCrossEntropy(Function):
    """Per-sample -log softmax(logits)[label], numerically stable; gradient (softmax - onehot) * g."""

    @staticmethod
    def forward(ctx, logits, labels):
        loss, probs = ctx.k.softmax_xent_forward(logits, labels)
        ctx.saved = (probs, labels)
        return loss

    @staticmethod
    def backward(ctx, g):
        probs, labels = ctx.saved
        return ctx.k.softmax_xent_backward(probs, labels, g), None


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sample losses of shape (N,) for logits (N, C) and int64 labels (N,) in [0, C)."""
    require_float("softmax_cross_entropy", logits)
    if labels.dtype.kind not in "iu":
        raise DTypeError("softmax_cross_entropy", f"labels must be int64 class indices, got {labels.dtype}",
                         logits, labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ShapeError("softmax_cross_entropy", "expects logits (N, C) and labels (N,)", logits, labels)
    # The label range is the kernel's to check: the CPU raises at once, CUDA at the next synchronisation
    # (checking here would read the labels back, a synchronisation per call).
    return SoftmaxCrossEntropy.apply(logits, labels)
