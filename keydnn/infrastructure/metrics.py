"""Metrics for Model.fit/evaluate: plain functions ``metric(y_true, y_pred) -> float`` computed on the
host, and a registry so metrics can be named by string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from keydnn.domain.errors import ArgumentError, ShapeError


def _host(x: Any) -> np.ndarray:
    return np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> float:
    """Fraction of predictions on the right side of ``threshold`` (0.5 for probabilities, 0 for logits)."""
    t, p = _host(y_true).reshape(-1), _host(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ShapeError("binary_accuracy", f"{t.size} targets vs {p.size} predictions")
    return float(np.mean((p > threshold) == (t > 0.5))) if t.size else 0.0


def categorical_accuracy(y_true: Any, y_pred: Any) -> float:
    """argmax(y_pred) == label, with labels as class indices (N,) or one-hot rows (N, C)."""
    t, p = _host(y_true), _host(y_pred)
    if p.ndim < 2:
        raise ShapeError("categorical_accuracy", f"predictions must be (N, C) scores, got shape {p.shape}")
    labels = t.argmax(axis=-1) if t.ndim == p.ndim else t
    pred = p.argmax(axis=-1)
    if labels.shape != pred.shape:
        raise ShapeError("categorical_accuracy",
                         f"targets of shape {t.shape} do not fit predictions {p.shape}")
    return float(np.mean(labels == pred)) if pred.size else 0.0


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Categorical accuracy for (N, C>1) scores, binary accuracy at 0.5 for (N,) or (N, 1) probabilities."""
    p = _host(y_pred)
    if p.ndim >= 2 and p.shape[-1] > 1:
        return categorical_accuracy(y_true, p)
    return binary_accuracy(y_true, p)


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy, "acc": accuracy, "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
}


def get_metric(metric: Any) -> Callable[[Any, Any], float]:
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ArgumentError("get_metric", f"unknown metric {metric!r}; expected one of {sorted(METRICS)}")
        return METRICS[metric]
    if not callable(metric):
        raise TypeError(f"a metric must be callable or a name, got {type(metric).__name__}")
    return metric


def metric_name(metric: Any, index: int) -> str:
    if isinstance(metric, str):
        return metric
    return getattr(metric, "__name__", None) or f"metric_{index}"
