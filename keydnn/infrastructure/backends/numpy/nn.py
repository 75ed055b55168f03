"""NumPy reference kernels for fused nn work: softmax, softmax cross-entropy, optimizer steps."""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import ShapeError


def softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_xent_forward(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise ShapeError("softmax_cross_entropy", f"labels must be in [0, {c}), got range "
                         f"[{labels.min()}, {labels.max()}]", logits, labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(logits.shape[0])
    loss = np.log(s[:, 0]) - shifted[rows, labels]
    e /= s
    return loss, e


def softmax_xent_backward(probs: np.ndarray, labels: np.ndarray, g: np.ndarray) -> np.ndarray:
    d = probs.copy()
    d[np.arange(probs.shape[0]), labels] -= 1
    d *= g[:, None]
    return d


def sgd_step(params: list, grads: list, bufs: list, lr: float, momentum: float, dampening: float,
             nesterov: bool, weight_decay: float) -> None:
    for p, g, buf in zip(params, grads, bufs):
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf *= momentum
            buf += (1.0 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g


def adam_step(params: list, grads: list, m: list, v: list, step: int, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, decoupled: bool) -> None:
    c1 = 1.0 - beta1 ** step
    c2 = 1.0 - beta2 ** step
    step_size = lr / c1
    for p, g, m_i, v_i in zip(params, grads, m, v):
        if weight_decay:
            if decoupled:
                p *= 1.0 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m_i *= beta1
        m_i += (1.0 - beta1) * g
        v_i *= beta2
        v_i += (1.0 - beta2) * (g * g)
        denom = np.sqrt(v_i / c2)
        denom += eps
        p -= step_size * (m_i / denom)
