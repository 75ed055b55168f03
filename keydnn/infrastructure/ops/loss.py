"""Loss ops that need a fused kernel: softmax cross-entropy on logits with integer labels, and BCE on logits."""

from __future__ import annotations

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.backends import kernels_for
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
    if labels.numel():  # a device kernel cannot raise, so the range is checked here (a sync on CUDA)
        k = kernels_for(labels.device)
        lo, hi = int(k.to_host(k.min(labels._data, None, False))), int(k.to_host(k.max(labels._data, None, False)))
        if lo < 0 or hi >= logits.shape[1]:
            raise ShapeError("softmax_cross_entropy", f"labels must be in [0, {logits.shape[1]}), "
                             f"got range [{lo}, {hi}]", logits, labels)
    return SoftmaxCrossEntropy.apply(logits, labels)
