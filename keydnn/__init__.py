"""KeyDNN: a small deep-learning framework with reverse-mode autograd on NumPy, native CPU and CUDA."""

from keydnn import losses, nn, optim
from keydnn.domain.device._device import Device
from keydnn.infrastructure.autograd import enable_grad, is_grad_enabled, no_grad
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.tensor._tensor import Tensor, manual_seed, tensor

__version__ = "0.1.0"


def __getattr__(name: str):
    # keydnn.cuda (CUDA graphs, memory statistics) loads the CUDA runtime bindings, so only when asked for
    if name == "cuda":
        import keydnn.cuda

        return keydnn.cuda
    raise AttributeError(f"module 'keydnn' has no attribute {name!r}")

__all__ = ["Device", "Parameter", "Tensor", "enable_grad", "is_grad_enabled", "losses", "manual_seed", "nn",
           "no_grad", "optim", "tensor"]
