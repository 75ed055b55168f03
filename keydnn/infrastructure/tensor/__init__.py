"""Tensor and the copies between devices."""

from keydnn.infrastructure.tensor._tensor import Tensor, manual_seed

__all__ = ["Tensor", "manual_seed"]
