"""Training on CUDA: the allocator's live bytes stay flat over 2,000 steps, models train to the same accuracy
as on the CPU, and mixing devices raises instead of copying."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import DeviceMismatchError
from keydnn.nn import Linear, ReLU, Sequential, SoftmaxCrossEntropy
from keydnn.optim import Adam

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _need_cuda(kt):  # conftest's kt: skips without a GPU, fails instead under KEYDNN_REQUIRE_CUDA=1
    return kt


def test_two_thousand_steps_do_not_grow_live_bytes():
    from keydnn.infrastructure.backends import cuda
    from keydnn.infrastructure.backends.cuda.storage import CudaArray

    rng = np.random.default_rng(0)
    x = Tensor.from_numpy(rng.standard_normal((64, 64)).astype(np.float32), device="cuda:0")
    y = Tensor.from_numpy(rng.integers(0, 10, 64), device="cuda:0")
    model = Sequential(Linear(64, 128), ReLU(), Linear(128, 128), ReLU(), Linear(128, 10)).to("cuda:0")
    assert isinstance(model[0].weight.data, CudaArray)
    opt, loss_fn = Adam(model.parameters(), lr=1e-3), SoftmaxCrossEntropy()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    first = step().item()
    for _ in range(10):
        loss = step()  # the same references alive as in the loop below
    cuda.synchronize(0)
    live_after_warmup = cuda.memory_stats(0)["allocated_bytes"]
    mallocs_after_warmup = cuda.memory_stats(0)["num_cuda_malloc"]
    for _ in range(2000):
        loss = step()
    cuda.synchronize(0)
    stats = cuda.memory_stats(0)
    assert stats["allocated_bytes"] <= live_after_warmup, stats
    assert stats["num_cuda_malloc"] == mallocs_after_warmup, "the training loop called cudaMalloc"
    assert loss.item() < first * 0.5


def test_mixed_devices_raise():
    a = Tensor.ones((2, 3), device="cuda:0")
    b = Tensor.ones((2, 3))
    with pytest.raises(DeviceMismatchError, match=r"(?i)add: .*cuda:0.*cpu"):
        a + b
    with pytest.raises(DeviceMismatchError):
        Linear(3, 2)(a)


def test_seed_cuda_example_runs_on_device():
    from keydnn.domain.device._device import Device

    x = Tensor.rand((1024, 1024), device=Device("cuda:0"), requires_grad=True)
    y = (x @ x.T).mean()
    y.backward()
    expected = 2 * x.to_numpy().astype(np.float64).sum(0) @ np.ones(1024) / 1024**2
    assert "cuda:0" in repr(y)
    np.testing.assert_allclose(x.grad.to_numpy().sum(1)[0], expected, rtol=1e-3)


def test_cross_entropy_with_a_bad_label_raises_at_item_and_leaves_the_model_usable():
    from keydnn.domain.errors import ShapeError

    rng = np.random.default_rng(0)
    x = Tensor.from_numpy(rng.standard_normal((8, 4)).astype(np.float32), device="cuda:0")
    model, loss_fn = Linear(4, 3).to("cuda:0"), SoftmaxCrossEntropy()
    bad = Tensor.from_numpy(np.array([0, 1, 2, 3, 0, 1, 2, 0]), device="cuda:0")
    loss = loss_fn(model(x), bad)
    with pytest.raises(ShapeError, match=r"softmax_cross_entropy: labels must be in \[0, 3\), got 3 at row 3"):
        loss.item()
    good = Tensor.from_numpy(np.array([0, 1, 2, 2, 0, 1, 2, 0]), device="cuda:0")
    loss = loss_fn(model(x), good)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(model.weight.grad.to_numpy()).all()
