"""Recurrent layers on CUDA: the same weights give the CPU's outputs and gradients (float64), on device arrays."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.infrastructure.recurrent import GRU, LSTM, RNN, Bidirectional

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_recurrent_cpu_cuda_parity(kt, layer_type):
    from keydnn.infrastructure.backends.cuda import CudaArray

    rng = np.random.default_rng(0)
    cpu = Bidirectional(layer_type(3, 5, dtype="float64"))
    gpu = Bidirectional(layer_type(3, 5, dtype="float64"))
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda:0")
    x = rng.standard_normal((6, 4, 3))
    outs, grads = [], []
    for model, dev in ((cpu, "cpu"), (gpu, "cuda:0")):
        xt = Tensor.from_numpy(x, device=dev, requires_grad=True)
        out = model(xt)
        (out * out).sum().backward()
        outs.append(out.to_numpy())
        grads.append([xt.grad.to_numpy()] + [p.grad.to_numpy() for p in model.parameters()])
        if dev != "cpu":
            assert type(out.data) is CudaArray and type(model.forward_layer.cell.W_hh.grad.data) is CudaArray
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-10, atol=1e-12)
    for g_gpu, g_cpu in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-9, atol=1e-11)
