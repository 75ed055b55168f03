"""CUDA graphs: a captured training step replayed N times equals N eager steps (MLP + Adam, LeNet + SGD), new
batches copied into the static inputs reach the replay, what a replay cannot repeat raises GraphCaptureError
and leaves the device usable, and the graph's private pool goes when the graph does."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import keydnn
import keydnn.cuda
from keydnn import Tensor
from keydnn.bench.workloads import lenet_data, mlp_data, training_step
from keydnn.domain.errors import GraphCaptureError, KeyDNNError
from keydnn.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropy
from keydnn.optim import SGD, Adam

pytestmark = pytest.mark.cuda
DEV = "cuda:0"


@pytest.fixture(autouse=True)
def _need_cuda(kt):  # conftest's kt: skips without a GPU, fails instead under KEYDNN_REQUIRE_CUDA=1
    return kt


def _mlp():
    return Sequential(Linear(64, 128), ReLU(), Linear(128, 128), ReLU(), Linear(128, 10))


def _lenet():
    return Sequential(Conv2d(1, 6, 5), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(256, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))


def _setup(kind: str, reference=None):
    """(model, step, x, y, optimizer) on cuda:0; the weights copied from ``reference`` when given."""
    model = (_mlp() if kind == "mlp" else _lenet()).to(DEV)
    if reference is not None:
        with keydnn.no_grad():
            for p, q in zip(model.parameters(), reference.parameters(), strict=True):
                p.copy_from(q)
    x_np, y_np = mlp_data() if kind == "mlp" else lenet_data()
    x, y = Tensor.from_numpy(x_np, device=DEV), Tensor.from_numpy(y_np, device=DEV)
    opt = Adam(model.parameters(), lr=1e-3) if kind == "mlp" else SGD(model.parameters(), lr=0.01)
    return model, training_step(model, SoftmaxCrossEntropy(), opt, x, y), x, y, opt


def _weights(model) -> list[np.ndarray]:
    return [np.array(p.to_numpy(), copy=True) for p in model.parameters()]


def _eager_run(kind: str, reference, steps: int):
    model, step, *_ = _setup(kind, reference)
    losses = [float(step().item()) for _ in range(steps)]
    return losses, _weights(model)


@pytest.mark.parametrize("kind", ["mlp", "lenet"])
def test_replays_equal_eager_steps(kind):
    steps = 6
    reference = (_mlp() if kind == "mlp" else _lenet()).to(DEV)
    eager_losses, eager_w = _eager_run(kind, reference, steps)
    again_losses, again_w = _eager_run(kind, reference, steps)
    # cuDNN may pick a non-deterministic backward algorithm; then graph and eager can only agree as closely
    # as two eager runs do (the MLP, cuBLAS only, must be exact).
    spread = max(float(np.max(np.abs(a - b))) for a, b in zip(eager_w, again_w, strict=True))
    if kind == "mlp":
        assert spread == 0.0 and eager_losses == again_losses

    model, step, _, _, opt = _setup(kind, reference)
    graphed = keydnn.cuda.make_graphed_step(step, warmup=1)  # the warm-up is step 1, run eagerly
    losses = [float(graphed().item()) for _ in range(steps - 1)]  # steps 2..N
    weights = _weights(model)
    eager_losses = eager_losses[1:]
    if spread == 0.0:
        assert losses == eager_losses
        for w, e in zip(weights, eager_w, strict=True):
            np.testing.assert_array_equal(w, e)
    else:
        np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)
        for w, e in zip(weights, eager_w, strict=True):
            np.testing.assert_allclose(w, e, rtol=0, atol=4 * spread)
    assert all(st["step"] == steps for st in opt.state)  # host step counts advanced once per replay
    graphed.reset()


def test_adam_replay_uses_each_steps_bias_correction():
    """Without per-replay bias corrections every replay would repeat step 2's: the weights would drift apart
    from eager ones within a few steps, so 20 replays make the check sharp."""
    reference = _mlp().to(DEV)
    eager_losses, eager_w = _eager_run("mlp", reference, 21)
    model, step, *_ = _setup("mlp", reference)
    graphed = keydnn.cuda.make_graphed_step(step)
    for _ in range(20):
        loss = graphed()
    assert float(loss.item()) == eager_losses[-1]
    for w, e in zip(_weights(model), eager_w, strict=True):
        np.testing.assert_array_equal(w, e)


def test_graphs_and_eager_steps_interleaved_keep_every_tensor_intact():
    """scripts/bench_cuda_graphs.py's pattern: eager and graphed steps of two models each, in batches of
    many steps, alternating. The graphed GEMMs must not replay into memory the allocator hands out again
    (once cuBLAS's capture-time workspace, dropped when its stream was changed back, corrupted the eager
    model's labels). Each graphed run must match an eager twin of it, and no label may change."""
    mlp_ref, lenet_ref = _mlp().to(DEV), _lenet().to(DEV)
    runs = []
    for kind, ref in (("mlp", mlp_ref), ("lenet", lenet_ref)):
        _, eager_step, _, y_eager, _ = _setup(kind)
        twin_model, twin_step, *_ = _setup(kind, ref)
        model, step, _, y, _ = _setup(kind, ref)
        graphed = keydnn.cuda.make_graphed_step(step, warmup=3)
        for _ in range(3):
            twin_step()
        runs.append((kind, eager_step, y_eager, twin_model, twin_step, model, graphed, y))
    labels = [(run[2].to_numpy().copy(), run[7].to_numpy().copy()) for run in runs]
    for _ in range(3):
        for _kind, eager_step, _, _, twin_step, _, graphed, _ in runs:
            for _ in range(60):
                eager_step()
            for _ in range(60):
                graphed()
                twin_step()
    keydnn.cuda.synchronize()  # a device-side label check that failed would raise here
    for (kind, _, y_eager, twin_model, _, model, graphed, y), (ye, yg) in zip(runs, labels, strict=True):
        np.testing.assert_array_equal(y_eager.to_numpy(), ye)
        np.testing.assert_array_equal(y.to_numpy(), yg)
        for w, e in zip(_weights(model), _weights(twin_model), strict=True):
            if kind == "mlp":  # cuBLAS only: bit for bit
                np.testing.assert_array_equal(w, e)
            else:  # cuDNN's non-deterministic backward algorithms drift apart over 183 steps (seen: 2.4e-4);
                np.testing.assert_allclose(w, e, rtol=0, atol=2e-3)  # reused memory would be far off
        graphed.reset()


def test_new_batch_copied_into_the_static_input_reaches_the_replay():
    model = _mlp().to(DEV)
    x_np, _ = mlp_data()
    x = Tensor.from_numpy(x_np, device=DEV)

    def forward(inp):
        with keydnn.no_grad():
            return model(inp)

    graphed = keydnn.cuda.make_graphed_step(forward, x)
    other = np.random.default_rng(5).standard_normal(x_np.shape).astype(np.float32)
    x.copy_from_numpy(other)
    out = graphed().to_numpy()
    with keydnn.no_grad():
        expect = model(Tensor.from_numpy(other, device=DEV)).to_numpy()
    np.testing.assert_array_equal(out, expect)
    x.copy_from(Tensor.from_numpy(x_np, device=DEV))  # device to device
    with keydnn.no_grad():
        expect = model(Tensor.from_numpy(x_np, device=DEV)).to_numpy()
    np.testing.assert_array_equal(graphed().to_numpy(), expect)
    graphed.reset()


def _eager_still_works() -> None:
    from keydnn.infrastructure.backends.cuda import _cudart, allocator

    assert _cudart.stream == 0 and not _cudart.capturing and allocator.allocator(0).capture_pool is None
    a = Tensor.from_numpy(np.arange(6, dtype=np.float32), device=DEV)
    np.testing.assert_array_equal(((a * 2) + 1).to_numpy(), np.arange(6, dtype=np.float32) * 2 + 1)


@pytest.mark.parametrize("what", ["item", "to_numpy", "repr", "from_host", "synchronize", "random"])
def test_what_a_replay_cannot_repeat_raises_and_leaves_the_device_usable(what):
    x = Tensor.from_numpy(np.ones((4, 4), np.float32), device=DEV)
    g = keydnn.cuda.CUDAGraph()
    with pytest.raises(GraphCaptureError, match="captur"):
        with g.capture():
            y = (x * 3).sum()
            if what == "item":
                y.item()
            elif what == "to_numpy":
                y.to_numpy()
            elif what == "repr":
                repr(y)
            elif what == "from_host":
                Tensor.from_numpy(np.zeros(3, np.float32), device=DEV)
            elif what == "synchronize":
                keydnn.cuda.synchronize()
            else:
                Tensor.randn(3, device=DEV)
    assert not g.captured
    with pytest.raises(GraphCaptureError, match="nothing captured"):
        g.replay()
    _eager_still_works()
    with keydnn.cuda.graph(g):  # the same graph object can capture after a failed attempt
        y = (x * 3).sum()
    g.replay()
    assert float(y.item()) == 48.0
    g.reset()


def test_capture_without_warmup_refuses_to_create_optimizer_state():
    _, step, *_ = _setup("mlp")
    g = keydnn.cuda.CUDAGraph()
    with pytest.raises(GraphCaptureError, match="eagerly before capturing"):
        with g.capture():
            step()
    _eager_still_works()
    assert float(step().item()) > 0  # the same step runs eagerly afterwards


def test_graph_pool_is_released_on_reset():
    gc.collect()
    before = keydnn.cuda.memory_stats(0)
    x = Tensor.from_numpy(np.ones((16, 16), np.float32), device=DEV)
    g = keydnn.cuda.CUDAGraph()
    with g.capture():
        y = (x @ x + 1.0).sum()
    mid = keydnn.cuda.memory_stats(0)
    grown = mid["graph_reserved_bytes"] - before["graph_reserved_bytes"]
    assert mid["graph_pools"] == before["graph_pools"] + 1 and grown > 0
    g.replay()
    assert float(y.item()) == 16.0 * 16 * 17
    g.reset()  # y still lives in the pool: its segment stays until y goes
    assert keydnn.cuda.memory_stats(0)["graph_pools"] == mid["graph_pools"]
    del y
    gc.collect()
    after = keydnn.cuda.memory_stats(0)
    assert after["graph_pools"] == before["graph_pools"]
    assert after["graph_reserved_bytes"] == before["graph_reserved_bytes"]
    assert after["reserved_bytes"] == mid["reserved_bytes"] - grown


def test_a_bad_label_in_a_replayed_step_is_reported_at_the_next_read_back():
    _, step, _, y, _ = _setup("mlp")
    graphed = keydnn.cuda.make_graphed_step(step)
    graphed()
    y.copy_from_numpy(np.full(y.shape, 99, dtype=np.int64))  # outside [0, 10)
    loss = graphed()
    with pytest.raises(KeyDNNError, match="got 99"):
        loss.item()
    _eager_still_works()
    graphed.reset()


def test_fit_with_cuda_graph_equals_eager_fit_and_runs_the_partial_batch_eagerly():
    from keydnn.infrastructure.backends.cuda import _cudart

    rng = np.random.default_rng(3)
    x = rng.standard_normal((64 * 5 + 17, 64)).astype(np.float32)  # 5 full batches and one of 17
    y = rng.integers(0, 10, len(x))
    reference = _mlp().to(DEV)
    histories, weights = [], []
    for cuda_graph in (False, True):
        model, *_ = _setup("mlp", reference)
        opt = Adam(model.parameters(), lr=1e-3)
        h = model.fit(x, y, loss=SoftmaxCrossEntropy(), optimizer=opt, batch_size=64, epochs=2, shuffle=False,
                      verbose=0, cuda_graph=cuda_graph, metrics=["accuracy"])
        histories.append(h.history)
        weights.append(_weights(model))
        assert all(st["step"] == 12 for st in opt.state)
    assert histories[0] == histories[1]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _cudart.stream == 0 and keydnn.cuda.memory_stats(0)["graph_parked_bytes"] == 0
