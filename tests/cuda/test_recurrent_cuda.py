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


@pytest.mark.parametrize("layer_type,kw", [(GRU, {"reset_after": True}), (GRU, {}), (LSTM, {}), (RNN, {})])
def test_stacked_batch_first_cpu_cuda_parity(kt, layer_type, kw):
    """Two layers, batch_first, initial states, merge 'sum': the sequence ops on CUDA give the CPU's results."""
    rng = np.random.default_rng(1)
    cpu = Bidirectional(layer_type(3, 5, num_layers=2, batch_first=True, dtype="float64", **kw), merge_mode="sum")
    gpu = Bidirectional(layer_type(3, 5, num_layers=2, batch_first=True, dtype="float64", **kw), merge_mode="sum")
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda:0")
    x, h0 = rng.standard_normal((4, 6, 3)), rng.standard_normal((2, 4, 5))
    outs, grads = [], []
    for model, dev in ((cpu, "cpu"), (gpu, "cuda:0")):
        xt = Tensor.from_numpy(x, device=dev, requires_grad=True)
        ht = Tensor.from_numpy(h0, device=dev, requires_grad=True)
        out = model(xt, (ht, ht) if layer_type is LSTM else ht)
        (out * out).sum().backward()
        outs.append(out.to_numpy())
        grads.append([xt.grad.to_numpy(), ht.grad.to_numpy()] + [p.grad.to_numpy() for p in model.parameters()])
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-10, atol=1e-12)
    for g_gpu, g_cpu in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_trains_on_cuda(kt, dtype):
    """A few Adam steps of an LSTM on CUDA lower the loss (the sequence op's backward drives real training)."""
    from keydnn.optim import Adam

    rng = np.random.default_rng(2)
    lstm = LSTM(2, 8, num_layers=2, return_sequences=False, return_state=False, dtype=dtype).to("cuda:0")
    x = Tensor.from_numpy(rng.standard_normal((6, 16, 2)).astype(dtype), device="cuda:0")
    y = Tensor.from_numpy(np.full((16, 8), 0.5, dtype), device="cuda:0")
    opt = Adam(list(lstm.parameters()), lr=0.05)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = ((lstm(x) - y) * (lstm(x) - y)).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.to_numpy()))
    assert losses[-1] < 0.5 * losses[0]
