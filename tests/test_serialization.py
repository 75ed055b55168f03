"""JSON checkpoints (keydnn.json.ckpt.v1): round trips of every module of this package, dtypes and buffers
preserved, loud failure for unregistered modules, and malformed or mismatched files rejected untouched."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import SerializationError
from keydnn.infrastructure import serialization as S
from keydnn.infrastructure.nn import (
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Model,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from keydnn.infrastructure.tensor import manual_seed


def _every_layer() -> Sequential:
    manual_seed(0)
    dense = Dense(5)
    dense(Tensor.ones((1, 6)))
    return Sequential(Flatten(), Linear(6, 6, dtype="float32"), ReLU(), dense, LeakyReLU(0.2), Sigmoid(),
                      Tanh(), Dropout(0.3), Linear(5, 4, bias=False), Softmax(axis=-1), LogSoftmax(1))


def test_round_trip_preserves_outputs_configs_and_format(tmp_path, rng):
    model = _every_layer()
    path = tmp_path / "sub" / "ckpt.json"
    model.save_json(str(path))
    data = json.loads(path.read_text())
    assert data["format"] == "keydnn.json.ckpt.v1"
    assert data["arch"]["type"] == "Sequential" and data["arch"]["children"]["1"]["type"] == "Linear"
    entry = data["state"]["1.weight"]
    assert set(entry) == {"b64", "dtype", "shape", "order"}
    assert entry["dtype"] == "<f4" and entry["shape"] == [6, 6]
    loaded = Sequential.load_json(str(path))
    assert [type(m) for m in loaded] == [type(m) for m in model]
    assert [m.get_config() for m in loaded] == [m.get_config() for m in model]
    x = rng.standard_normal((3, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x).to_numpy(), model.predict(x).to_numpy())


def test_children_order_survives_sorted_keys_past_ten(tmp_path, rng):
    manual_seed(1)
    model = Sequential(*[Linear(3, 3) for _ in range(12)])
    model.save_json(tmp_path / "m.json")
    loaded = Sequential.load_json(tmp_path / "m.json")
    assert [n for n, _ in loaded.named_children()] == [str(i) for i in range(12)]
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x).to_numpy(), model.predict(x).to_numpy())


def test_float64_is_preserved_not_forced_to_float32(tmp_path):
    model = Sequential(Linear(2, 3, dtype="float64"))
    model.save_json(tmp_path / "m.json")
    loaded = S.load_json(tmp_path / "m.json")
    assert loaded[0].weight.dtype == np.float64
    np.testing.assert_array_equal(loaded[0].weight.to_numpy(), model[0].weight.to_numpy())


@S.register_module()
class WithBuffer(Model):
    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.n = n
        self.lin = Linear(n, n)
        self.register_buffer("running", Tensor.zeros((n,), dtype="float64"))
        self.register_buffer("count", Tensor.zeros((1,), dtype="int64"))

    def forward(self, x):
        return self.lin(x)

    def get_config(self):
        return {"n": self.n}


def test_buffers_are_saved_with_their_dtypes(tmp_path):
    m = WithBuffer(4)
    m.running.copy_from_numpy(np.arange(4.0))
    m.count.copy_from_numpy(np.array([7]))
    m.save_json(tmp_path / "b.json")
    loaded = WithBuffer.load_json(tmp_path / "b.json")
    assert loaded.running.dtype == np.float64 and loaded.count.dtype == np.int64
    assert loaded.running.to_numpy().tolist() == [0, 1, 2, 3] and loaded.count.to_numpy().tolist() == [7]


def test_unregistered_module_fails_loudly_on_save(tmp_path):
    class Custom(Module):
        def forward(self, x):
            return x
    with pytest.raises(SerializationError, match="not registered.*register_module"):
        Sequential(Linear(2, 2), Custom()).save_json(tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_load_json_checks_the_class(tmp_path):
    Sequential(Linear(2, 2)).save_json(tmp_path / "s.json")
    with pytest.raises(TypeError, match="Sequential"):
        WithBuffer.load_json(tmp_path / "s.json")


def test_register_module_refuses_a_name_taken_by_another_class():
    with pytest.raises(ValueError, match="already registered"):
        @S.register_module("Linear")
        class NotLinear(Module):
            pass
    with pytest.raises(TypeError):
        S.register_module()(int)


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def saved(tmp_path):
    manual_seed(2)
    model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    model.save_json(tmp_path / "good.json")
    return model, json.loads((tmp_path / "good.json").read_text())


def _corruptions(good):
    def edit(fn):
        d = json.loads(json.dumps(good))
        fn(d)
        return d
    w = "0.weight"
    return {
        "format": edit(lambda d: d.update(format="other.v9")),
        "no_state": edit(lambda d: d.pop("state")),
        "unknown_type": edit(lambda d: d["arch"]["children"]["1"].update(type="NoSuchLayer")),
        "bad_config": edit(lambda d: d["arch"]["children"]["0"]["config"].update(in_features=-3)),
        "bad_b64": edit(lambda d: d["state"][w].update(b64="%%%")),
        "short_bytes": edit(lambda d: d["state"][w].update(b64=base64.b64encode(b"\0" * 8).decode())),
        "bad_dtype": edit(lambda d: d["state"][w].update(dtype="<c16")),
        "bad_shape": edit(lambda d: d["state"][w].update(shape=[4, -3])),
        "shape_mismatch": edit(lambda d: d["state"][w].update(shape=[3, 4])),
        "dtype_mismatch": edit(lambda d: d["state"]["0.bias"].update(
            dtype="<f8", b64=base64.b64encode(np.zeros(4).tobytes()).decode())),
        "missing_key": edit(lambda d: d["state"].pop("2.bias")),
        "extra_key": edit(lambda d: d["state"].update(extra=d["state"]["0.bias"])),
        "not_an_entry": edit(lambda d: d["state"].update({w: [1, 2, 3]})),
        # issue 8 item 20: an arch that contradicts the state (Linear(8, 4) but a (4, 3) weight)
        "arch_contradicts_state": edit(lambda d: d["arch"]["children"]["0"]["config"].update(in_features=8)),
        "arch_contradicts_state_and_model": edit(lambda d: (
            d["arch"]["children"]["2"]["config"].update(out_features=5))),
        # issue 8 item 21: JSON booleans and other non-ints where ints belong
        "bool_in_shape": edit(lambda d: d["state"][w].update(shape=[4, True, 3])),
        "float_in_shape": edit(lambda d: d["state"][w].update(shape=[4.0, 3])),
        "dtype_not_a_string": edit(lambda d: d["state"][w].update(dtype=["<f4"])),
        "order_not_a_string": edit(lambda d: d["state"][w].update(order=["C"])),
        "huge_shape": edit(lambda d: d["state"][w].update(shape=[2**62, 2**62, 4])),
    }


def test_malformed_files_raise_serialization_error(tmp_path, saved):
    _, good = saved
    for name, data in _corruptions(good).items():
        with pytest.raises(SerializationError):
            S.load_json(_write(tmp_path / f"{name}.json", data))
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(SerializationError, match="not valid JSON"):
        S.load_json(tmp_path / "garbage.json")


def test_loading_into_a_model_validates_everything_first(tmp_path, saved):
    model, good = saved
    before = {k: v.to_numpy().copy() for k, v in model.state_dict().items()}
    for name, data in _corruptions(good).items():  # bad_config and unknown_type included (issue 8 item 20)
        with pytest.raises(SerializationError):
            model.load_weights_json(_write(tmp_path / f"{name}.json", data))
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(v.to_numpy(), before[k], err_msg=name)
    other = Sequential(Linear(3, 4), Tanh(), Linear(4, 2))
    with pytest.raises(SerializationError, match="architecture"):
        other.load_weights_json(tmp_path / "good.json")


def test_load_weights_rejects_a_file_whose_arch_contradicts_its_state(tmp_path, saved):
    model, good = saved
    data = json.loads(json.dumps(good))
    data["arch"]["children"]["0"]["config"]["in_features"] = 8
    with pytest.raises(SerializationError, match="does not match its own 'arch'"):
        model.load_weights_json(_write(tmp_path / "contradiction.json", data))
    data = json.loads(json.dumps(good))
    data["arch"]["children"]["0"]["config"]["in_features"] = -3
    with pytest.raises(SerializationError, match="cannot build Linear"):
        model.load_weights_json(_write(tmp_path / "unbuildable.json", data))


def test_load_weights_compares_configs_not_only_type_names(tmp_path, saved):
    _, good = saved
    other = Sequential(Linear(3, 4), ReLU(), Linear(4, 2, bias=False))
    with pytest.raises(SerializationError, match="architecture differs.*bias"):
        other.load_weights_json(tmp_path / "good.json")
    before = other[2].weight.to_numpy().copy()
    other.load_weights_json(tmp_path / "good.json", strict=False)  # non-strict: matching keys load
    assert not np.array_equal(other[2].weight.to_numpy(), before)


@pytest.mark.parametrize("shape", [[3, True, 8], [3, 8.0], "3x8", [3, None]])
def test_decode_array_rejects_non_int_dimensions(shape):
    entry = {**S.encode_array(np.zeros((3, 8), np.float32)), "shape": shape}
    with pytest.raises(SerializationError, match="shape must be a list of non-negative ints"):
        S.decode_array(entry, "w")


def test_load_weights_into_an_existing_model(tmp_path, saved):
    model, _ = saved
    manual_seed(99)
    fresh = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    fresh.load_weights_json(tmp_path / "good.json")
    for (n, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=n)


def test_low_level_helpers_round_trip():
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    np.testing.assert_array_equal(S.decode_array(S.encode_array(arr)), arr)
    fortran = {**S.encode_array(np.asfortranarray(arr).T.copy(order="C")), "order": "F", "shape": [2, 3]}
    np.testing.assert_array_equal(S.decode_array(fortran), arr)
    node = S.module_to_config(Sequential(Linear(2, 2), ReLU()))
    rebuilt = S.module_from_config(node)
    assert [type(m).__name__ for m in rebuilt] == ["Linear", "ReLU"]
    assert {"Sequential", "Linear", "Dense", "ReLU", "Softmax", "Flatten", "Dropout"} <= set(
        S.registered_modules())
