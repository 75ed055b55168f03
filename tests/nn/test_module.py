"""Module: registration, traversal order, modes, state_dict/load_state_dict, config, ``to`` and repr."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor, no_grad
from keydnn.domain.errors import SerializationError
from keydnn.infrastructure.nn import Dropout, Linear, Module, ReLU, Sequential
from keydnn.infrastructure.parameter import Parameter


class Block(Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = Parameter((3,), initializer="ones")
        self.inner = Linear(3, 2)
        self.register_buffer("running", Tensor.zeros((2,)))
        self.register_buffer("scratch", Tensor.zeros((1,)), persistent=False)

    def forward(self, x: Tensor, shift: float = 0.0) -> Tensor:
        return self.inner(x * self.scale) + shift


def test_parameters_own_first_then_children_with_dotted_names():
    b = Block()
    names = [n for n, _ in b.named_parameters()]
    assert names == ["scale", "inner.weight", "inner.bias"]
    assert [n for n, _ in b.named_parameters(prefix="blk")] == ["blk.scale", "blk.inner.weight",
                                                                 "blk.inner.bias"]
    assert [p.shape for p in b.parameters()] == [(3,), (2, 3), (2,)]
    assert [n for n, _ in b.named_parameters(recurse=False)] == ["scale"]


def test_shared_parameter_and_module_listed_once():
    lin = Linear(2, 2)
    seq = Sequential(lin, ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]


def test_children_modules_and_buffers():
    b = Block()
    assert [n for n, _ in b.named_children()] == ["inner"]
    assert [type(m).__name__ for m in b.modules()] == ["Block", "Linear"]
    assert [n for n, _ in b.named_buffers()] == ["running", "scratch"]
    assert len(list(b.buffers())) == 2


def test_setting_none_unregisters_and_reassignment_moves_between_registries():
    b = Block()
    b.inner = None
    assert [n for n, _ in b.named_parameters()] == ["scale"]
    b.scale = 3.0  # a plain value replaces the parameter
    assert list(b.parameters()) == []
    del b.running
    assert "running" not in b.state_dict()


def test_missing_super_init_is_a_clear_error():
    class Bad(Module):
        def __init__(self):
            self.w = Parameter((1,))

    with pytest.raises(TypeError, match="super\\(\\).__init__"):
        Bad()


def test_call_forwards_any_arguments():
    b = Block()
    x = Tensor.ones((4, 3))
    np.testing.assert_allclose(b(x, shift=1.0).to_numpy(), b.forward(x).to_numpy() + 1.0, rtol=1e-6)


def test_train_eval_is_recursive():
    seq = Sequential(Linear(2, 2), Sequential(Dropout(0.5)))
    assert all(m.training for m in seq.modules())
    assert seq.eval() is seq
    assert not any(m.training for m in seq.modules())
    seq.train()
    assert all(m.training for m in seq.modules())


def test_zero_grad_clears_every_parameter():
    b = Block()
    b(Tensor.ones((2, 3))).sum().backward()
    assert all(p.grad is not None for p in b.parameters())
    b.zero_grad()
    assert all(p.grad is None for p in b.parameters())


def test_state_dict_holds_parameters_and_persistent_buffers():
    b = Block()
    state = b.state_dict()
    assert list(state) == ["scale", "inner.weight", "inner.bias", "running"]
    np.testing.assert_array_equal(state["inner.weight"].to_numpy(), b.inner.weight.to_numpy())


def test_load_state_dict_round_trip_from_arrays_and_tensors():
    a, b = Block(), Block()
    b.load_state_dict(a.state_dict())
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(pa.to_numpy(), pb.to_numpy(), err_msg=n)
    arrays = {k: v.to_numpy() * 0 + 2 for k, v in a.state_dict().items()}
    b.load_state_dict(arrays)
    assert float(b.inner.weight.to_numpy().max()) == 2.0
    assert float(b.running.to_numpy().min()) == 2.0


def test_load_state_dict_checks_everything_before_writing():
    b = Block()
    before = {k: v.to_numpy().copy() for k, v in b.state_dict().items()}
    good = {k: v.to_numpy() + 1 for k, v in b.state_dict().items()}
    bad_shape = dict(good, **{"inner.bias": np.zeros(5, np.float32)})
    bad_dtype = dict(good, **{"inner.bias": np.zeros(2, np.float64)})
    missing = {k: v for k, v in good.items() if k != "scale"}
    extra = dict(good, bogus=np.zeros(1, np.float32))
    cases = ((bad_shape, "shape"), (bad_dtype, "float64"), (missing, "missing"), (extra, "bogus"))
    for state, pattern in cases:
        with pytest.raises(SerializationError, match=pattern):
            b.load_state_dict(state)
        for k, v in b.state_dict().items():
            np.testing.assert_array_equal(v.to_numpy(), before[k])
    b.load_state_dict(missing, strict=False)
    np.testing.assert_array_equal(b.scale.to_numpy(), before["scale"])
    np.testing.assert_array_equal(b.inner.bias.to_numpy(), before["inner.bias"] + 1)


def test_load_state_dict_invalidates_graphs_that_saved_old_values():
    lin = Linear(2, 2)
    y = (lin(Tensor.ones((1, 2), requires_grad=True)) * lin.weight.sum()).sum()
    lin.load_state_dict({k: v.to_numpy() for k, v in lin.state_dict().items()})
    with pytest.raises(Exception, match="modified in place"):
        y.backward()


def test_config_round_trip_builds_an_equivalent_module():
    lin = Linear(3, 4, bias=False, dtype="float64")
    clone = Linear.from_config(lin.get_config())
    assert clone.get_config() == lin.get_config()
    assert clone.weight.dtype == np.float64 and clone.bias is None


def test_to_cpu_keeps_parameter_identity():
    lin = Linear(2, 2)
    w = lin.weight
    assert lin.to("cpu") is lin and lin.weight is w


def test_to_cuda_moves_parameters_and_buffers_when_available():
    try:
        Tensor.zeros((1,), device="cuda:0")
    except Exception as exc:  # no GPU, no CUDA runtime, or the CUDA backend is not built here
        pytest.skip(f"no usable CUDA device: {exc}")
    b = Block()
    w = b.inner.weight
    b.to("cuda:0")
    assert b.inner.weight is w and str(w.device) == "cuda:0"
    assert str(b.running.device) == "cuda:0"
    y = b(Tensor.ones((2, 3), device="cuda:0"))
    assert str(y.device) == "cuda:0"


def test_repr_shows_the_tree():
    text = repr(Sequential(Linear(2, 3), ReLU()))
    assert text.startswith("Sequential(") and "(0): Linear(in_features=2, out_features=3" in text
    assert "(1): ReLU()" in text


def test_parameter_is_a_leaf_that_requires_grad_and_validates_initializer():
    p = Parameter((2, 2))
    assert p.requires_grad and p.is_leaf and isinstance(p, Tensor)
    with pytest.raises(ValueError, match="unknown initializer"):
        Parameter((2, 2), initializer="nope")
    with pytest.raises(ValueError, match="no initializer"):
        _ = p.initializer
    q = Parameter(data=np.arange(4.0).reshape(2, 2))
    assert q.dtype == np.float64 and q.to_numpy()[1, 1] == 3.0
    with no_grad():
        q.accumulate_grad(Tensor.ones((2, 2), dtype="float64"))
        q.accumulate_grad(Tensor.ones((2, 2), dtype="float64"))
    np.testing.assert_array_equal(q.grad.to_numpy(), np.full((2, 2), 2.0))
