"""How long a training step keeps memory: measured with tracemalloc on the NumPy backend (NumPy reports its
data allocations to it), against a bound computed from the CNN's tensor sizes.

The model is scripts/bench_cuda_memory.py's cnn256 at a smaller batch: Conv2d(3, 32, 3, p1) ReLU
Conv2d(32, 64, 3, p1) ReLU MaxPool 2 Flatten Linear(64*16*16, 10), softmax cross-entropy, SGD. With PyTorch's
lifetimes a step holds, at most, what the graph saved (ReLU outputs, the max-pool's argmax and output) plus
the gradient flowing into and out of the widest node; an input no node saved (a conv output feeding a ReLU)
dies in the forward pass, a saved array when its node's backward has run, a gradient once consumed.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.infrastructure.backends import use_cpu_backend
from keydnn.infrastructure.backends.numpy import conv as np_conv
from keydnn.infrastructure.backends.numpy import pool as np_pool
from keydnn.infrastructure.losses import SoftmaxCrossEntropy
from keydnn.infrastructure.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from keydnn.infrastructure.optim import SGD
from keydnn.infrastructure.tensor import manual_seed

N = 32
F32 = 4


@pytest.fixture
def numpy_backend(monkeypatch):
    # Small kernel workspaces, so the peak measures lifetimes rather than im2col's batch slice.
    monkeypatch.setattr(np_conv, "COLUMN_BYTES", 2**20)
    monkeypatch.setattr(np_pool, "SCATTER_BYTES", 2**20)
    with use_cpu_backend("numpy"):
        yield


def _cnn(seed: int = 0):
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = Tensor.from_numpy(rng.standard_normal((N, 3, 32, 32), dtype=np.float32))
    y = Tensor.from_numpy(rng.integers(0, 10, N))
    model = Sequential(Conv2d(3, 32, 3, padding=1), ReLU(), Conv2d(32, 64, 3, padding=1), ReLU(),
                       MaxPool2d(2), Flatten(), Linear(64 * 16 * 16, 10))
    return model, x, y


def _bound_bytes() -> int:
    """The most a step holds with PyTorch's lifetimes, from the tensor sizes, plus 10% and the workspace."""
    relu1 = N * 32 * 32 * 32 * F32  # ReLU 1's output: saved by ReLU 1 and by conv 2
    wide = N * 64 * 32 * 32 * F32  # conv 2's output, ReLU 2's output, and their gradients
    pooled, argmax = N * 64 * 16 * 16 * F32, N * 64 * 16 * 16 * 8  # Linear's saved input; the pool's int64
    phases = {
        "forward ReLU 2": relu1 + wide + wide,  # conv 2's output dies once ReLU 2 has run
        "forward max-pool": relu1 + wide + pooled + argmax + pooled // 2,  # + a running-max temporary
        "backward max-pool": relu1 + wide + argmax + pooled + wide,  # g in, g out
        "backward ReLU 2": relu1 + wide + wide + wide + wide // F32,  # saved output, g in, g out, y > 0 mask
        "backward conv 2": relu1 + wide + relu1,  # g in, the input gradient (its output's storage is gone)
    }
    workspace = 2**20  # the kernels' column/scatter blocks (set by the fixture) and small temporaries
    return int(1.1 * max(phases.values())) + workspace


def test_cnn_step_peak_stays_within_the_live_set(numpy_backend):
    model, x, y = _cnn()
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up: gradients exist from here on
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    own = peak - before
    # In units of ReLU 1's output the bound is 8.25 and the step takes about 7.7; keeping each input tensor
    # until its consumer's backward (conv outputs no node saved) took it to 10.7.
    assert own <= _bound_bytes(), f"step's own peak {own / 2**20:.1f} MiB > {_bound_bytes() / 2**20:.1f} MiB"
    assert after - before < 2**20  # nothing of the step outlives it (gradients were already allocated)


def test_unsaved_inputs_die_in_forward_and_saved_arrays_after_backward(numpy_backend):
    model, x, y = _cnn()
    conv1, relu1, conv2 = model._modules["0"], model._modules["1"], model._modules["2"]
    rest = list(model._modules.values())[3:]
    h = conv1(x)
    conv1_out = weakref.ref(h._data)
    h = relu1(h)  # ReLU saves its output; nothing saves its input
    relu1_out = weakref.ref(h._data)
    h = conv2(h)
    for m in rest:
        h = m(h)
    loss = SoftmaxCrossEntropy()(h, y)
    del h
    gc.collect()
    assert conv1_out() is None, "a node keeps the input tensor it did not save"
    assert relu1_out() is not None  # saved by ReLU 1 and conv 2 until their backward
    loss.backward()
    gc.collect()
    assert relu1_out() is None, "a saved array outlived backward"
    assert loss._node.saved == () and loss._node.parents == ()


def test_retain_graph_keeps_saved_arrays_and_a_second_backward_gives_the_same_grads(numpy_backend):
    model, x, y = _cnn()
    conv1, relu1 = model._modules["0"], model._modules["1"]
    rest = list(model._modules.values())[2:]
    h = relu1(conv1(x))
    relu1_out = weakref.ref(h._data)
    for m in rest:
        h = m(h)
    loss = SoftmaxCrossEntropy()(h, y)
    del h
    loss.backward(retain_graph=True)
    gc.collect()
    assert relu1_out() is not None
    first = [p.grad.to_numpy().copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    loss.backward()
    for g1, p in zip(first, model.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad.to_numpy(), g1)
    gc.collect()
    assert relu1_out() is None


def test_an_intermediate_changed_in_place_after_use_is_still_detected():
    x = Tensor(data=[1.0, 2.0], requires_grad=True)
    h = x * 2.0
    z = h.exp()  # Exp saves its output, not h: the node keeps h only weakly
    h += 1.0
    with pytest.raises(Exception, match="modified in place"):
        z.sum().backward()


def test_cnn_gradients_match_a_float64_torch_reference(numpy_backend):
    torch = pytest.importorskip("torch")
    model, x, y = _cnn(seed=3)
    SoftmaxCrossEntropy()(model(x), y).backward()
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                             torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                             torch.nn.Flatten(), torch.nn.Linear(64 * 16 * 16, 10)).double()
    with torch.no_grad():
        for tp, p in zip(tm.parameters(), model.parameters(), strict=True):
            tp.copy_(torch.from_numpy(p.to_numpy().astype(np.float64)))
    loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x.to_numpy().astype(np.float64))),
                                             torch.from_numpy(y.to_numpy()))
    loss.backward()
    for tp, p in zip(tm.parameters(), model.parameters(), strict=True):
        ref = tp.grad.numpy()
        np.testing.assert_allclose(p.grad.to_numpy(), ref, rtol=2e-3, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_slices_of_the_numpy_kernels_change_no_bit(monkeypatch, dtype):
    rng = np.random.default_rng(5)
    configs = [((6, 4, 9, 9), (6, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1),
               ((5, 6, 11, 8), (4, 3, 3, 2), (2, 1), (0, 2), (1, 2), 2)]
    for xs, ws, stride, padding, dilation, groups in configs:
        x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        results = []
        for budget in (10**12, 1):  # the whole batch at once (the unsliced kernel), one sample at a time
            monkeypatch.setattr(np_conv, "COLUMN_BYTES", budget)
            monkeypatch.setattr(np_pool, "SCATTER_BYTES", budget)
            y = np_conv.conv2d_forward(x, w, b, stride, padding, dilation, groups)
            g = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
            py, am = np_pool.max_pool2d_forward(x, (3, 2), (1, 2), (1, 1))
            gp = np.random.default_rng(7).standard_normal(py.shape).astype(dtype)
            results.append((y, np_conv.conv2d_backward_input(g, w, xs, stride, padding, dilation, groups),
                            np_conv.conv2d_backward_weight(g, x, ws, stride, padding, dilation, groups),
                            np_pool.max_pool2d_backward(gp, am, xs)))
        for whole, sliced in zip(*results, strict=True):
            assert whole.dtype == sliced.dtype
            np.testing.assert_array_equal(whole, sliced)
