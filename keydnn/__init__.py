"""KeyDNN: a small deep-learning framework with reverse-mode autograd on NumPy, native CPU and CUDA."""

from keydnn.domain.device._device import Device
from keydnn.infrastructure.autograd import enable_grad, is_grad_enabled, no_grad
from keydnn.infrastructure.tensor._tensor import Tensor, manual_seed

__version__ = "0.1.0"
__all__ = ["Device", "Tensor", "enable_grad", "is_grad_enabled", "manual_seed", "no_grad"]
