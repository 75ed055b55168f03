"""The host side of a captured step, without a GPU: under a capture recording (keydnn.infrastructure.capture)
an optimizer leaves its step counts where they were and registers a hook that advances them once per replay,
and refuses to create its state (which a graph would zero again on every replay)."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import GraphCaptureError
from keydnn.infrastructure import capture
from keydnn.optim import SGD, Adam


def _param() -> Tensor:
    p = Tensor.from_numpy(np.ones(3, np.float32), requires_grad=True)
    p.grad = Tensor.from_numpy(np.full(3, 0.5, np.float32))
    return p


def test_a_captured_step_advances_the_step_count_once_per_replay():
    p = _param()
    opt = Adam([p])
    opt.step()  # eager: creates the moments
    hooks: list = []
    capture.begin(hooks)
    try:
        assert capture.capturing()
        opt.step()
    finally:
        capture.end()
    assert not capture.capturing()
    assert opt.state[0]["step"] == 1 and len(hooks) == 1  # the capture ran nothing (on a GPU)
    for replay in range(3):
        hooks[0](replay)
    assert opt.state[0]["step"] == 4


def test_a_capture_refuses_to_create_optimizer_state():
    opt = SGD([_param()], lr=0.1, momentum=0.9)
    capture.begin([])
    try:
        with pytest.raises(GraphCaptureError, match="eagerly before capturing"):
            opt.step()
    finally:
        capture.end()
    assert opt.state[0]["step"] == 0
    opt.step()
    assert opt.state[0]["step"] == 1


def test_only_one_recording_at_a_time():
    capture.begin([])
    try:
        with pytest.raises(RuntimeError):
            capture.begin([])
    finally:
        capture.end()


def test_kernel_hooks_get_the_steps_since_the_capture_even_with_eager_steps_between_replays():
    p = _param()
    opt = Adam([p])
    opt.step()
    seen: list[int] = []
    original = opt._update

    def update(*args):  # a kernel that, like CUDA's Adam under capture, registers a replay hook
        original(*args)
        if capture.capturing():
            capture.on_replay(seen.append)
    opt._update = update
    hooks: list = []
    capture.begin(hooks)
    try:
        opt.step()  # captures step 2
    finally:
        capture.end()
    assert len(hooks) == 1  # the kernel's hook runs inside the optimizer's
    hooks[0](0)
    hooks[0](1)
    opt.step()  # an eager step between replays: step 4
    hooks[0](2)
    assert seen == [0, 1, 3] and opt.state[0]["step"] == 5


def test_fit_with_cuda_graph_refuses_a_model_off_cuda():
    from keydnn.domain.errors import ArgumentError
    from keydnn.nn import Linear, Sequential

    model = Sequential(Linear(4, 2))
    x, y = np.zeros((8, 4), np.float32), np.zeros((8, 2), np.float32)
    with pytest.raises(ArgumentError, match="cuda_graph=True needs a model on a CUDA device"):
        model.fit(x, y, loss="mse", optimizer=SGD(model.parameters(), lr=0.1), cuda_graph=True, verbose=0)
