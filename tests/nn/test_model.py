"""Sequential and Model: container API, predict/evaluate, train_on_batch, fit (batches, shuffling, validation,
metrics, History, progress output)."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import ArgumentError, DTypeError, KeyDNNError, ShapeError
from keydnn.infrastructure import metrics as M
from keydnn.infrastructure.losses import MSE, SoftmaxCrossEntropy
from keydnn.infrastructure.nn import (
    BatchNorm1d,
    Conv2d,
    Conv2dTranspose,
    Dense,
    Dropout,
    History,
    LayerNorm,
    Linear,
    ReLU,
    Sequential,
)
from keydnn.infrastructure.optim import SGD, Adam
from keydnn.infrastructure.tensor import manual_seed


def _model(seed=0):
    manual_seed(seed)
    return Sequential(Linear(4, 8), ReLU(), Linear(8, 3))


def _data(rng, n=40):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def test_sequential_container_api():
    a, b = Linear(2, 3), ReLU()
    seq = Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    assert seq.layers() == (a, b)
    seq.add(Linear(3, 1), name="head")
    assert [n for n, _ in seq.named_children()] == ["0", "1", "head"]
    assert isinstance(seq[1:], Sequential) and len(seq[1:]) == 2
    with pytest.raises(TypeError):
        seq.add(lambda x: x)
    with pytest.raises(ValueError):
        seq.add(ReLU(), name="head")
    assert seq(Tensor.ones((5, 2))).shape == (5, 1)


def test_summary_counts_parameters():
    text = Sequential(Linear(4, 8), ReLU(), Dense(3)).summary()
    assert "Linear" in text and "40" in text and "(unbuilt)" in text
    assert "Total params: 40" in text


def test_predict_is_eval_mode_no_grad_and_batches(rng):
    manual_seed(0)
    model = Sequential(Linear(4, 6), Dropout(0.5), Linear(6, 2))
    x = rng.standard_normal((10, 4)).astype(np.float32)
    full = model.predict(x)
    assert not full.requires_grad and model.training  # restored after predicting
    np.testing.assert_allclose(model.predict(x, batch_size=3).to_numpy(), full.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.predict(Tensor.from_numpy(x)).to_numpy(), full.to_numpy(), rtol=1e-6)
    assert model.predict(x, requires_grad=True).requires_grad


def test_ndarray_inputs_take_the_model_dtype(rng):
    model = Sequential(Linear(4, 2, dtype="float64"))
    assert model.predict(rng.standard_normal((3, 4)).astype(np.float32)).dtype == np.float64


def test_train_on_batch_follows_the_seed_sequence(rng):
    model = _model()
    x, y = _data(rng)
    opt = SGD(model.parameters(), lr=0.1)
    before = model[0].weight.to_numpy().copy()
    logs = model.train_on_batch(x, y, loss=SoftmaxCrossEntropy(), optimizer=opt, metrics=[M.accuracy])
    assert set(logs) == {"loss", "accuracy"} and logs["loss"] > 0
    assert not np.array_equal(before, model[0].weight.to_numpy())
    grads = model[0].weight.grad.to_numpy().copy()
    logs2 = model.train_on_batch(x, y, loss=SoftmaxCrossEntropy(), optimizer=opt, step=False, zero_grad=False,
                                 metrics=["accuracy"], metric_names=["acc"])
    assert set(logs2) == {"loss", "acc"}
    assert not np.allclose(model[0].weight.grad.to_numpy(), grads)  # accumulated, not zeroed
    with pytest.raises(ValueError, match="metric_names"):
        model.train_on_batch(x, y, loss="cross_entropy", optimizer=opt, metrics=["accuracy"], metric_names=[])


def test_metric_called_with_swapped_arguments_on_type_error(rng):
    model = _model()
    x, y = _data(rng, 8)

    def pred_first(y_pred: Tensor, y_true: Tensor) -> float:
        if not y_pred.dtype.kind == "f":
            raise TypeError("expects predictions first")
        return 0.25
    logs = model.train_on_batch(x, y, loss="cross_entropy", optimizer=SGD(model.parameters()),
                                metrics=[pred_first])
    assert logs["pred_first"] == 0.25


def test_evaluate_weights_batches_by_size(rng):
    model = _model()
    x, y = _data(rng, 10)
    whole = model.evaluate(x, y, SoftmaxCrossEntropy(), ["accuracy"])
    batched = model.evaluate(x, y, SoftmaxCrossEntropy(), ["accuracy"], batch_size=3)
    assert whole.keys() == {"loss", "accuracy"}
    np.testing.assert_allclose(batched["loss"], whole["loss"], rtol=1e-5)
    np.testing.assert_allclose(batched["accuracy"], whole["accuracy"])
    with pytest.raises(ShapeError):
        model.evaluate(x, y[:5], SoftmaxCrossEntropy())


@pytest.mark.parametrize("as_tensor", [False, True])
def test_fit_on_arrays_and_tensors_reduces_loss(rng, as_tensor, capsys):
    model = _model()
    x, y = _data(rng, 64)
    if as_tensor:
        x, y = Tensor.from_numpy(x), Tensor.from_numpy(y)
    hist = model.fit(x, y, loss=SoftmaxCrossEntropy(), optimizer=Adam(model.parameters(), lr=0.02),
                     metrics=["accuracy"], batch_size=16, epochs=15, verbose=0, validation_data=(x, y))
    assert isinstance(hist, History) and hist.epoch == list(range(1, 16))
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist.last()["val_accuracy"] >= 0.9
    assert capsys.readouterr().out == ""


def test_fit_shuffle_is_seeded_and_reproducible(rng):
    x, y = _data(rng, 50)
    runs = []
    for _ in range(2):
        model = _model(seed=1)
        h = model.fit(x, y, loss="cross_entropy", optimizer=SGD(model.parameters(), lr=0.1), batch_size=7,
                      epochs=3, verbose=0, seed=42)
        runs.append((h["loss"], model[0].weight.to_numpy().copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    model = _model(seed=1)
    h = model.fit(x, y, loss="cross_entropy", optimizer=SGD(model.parameters(), lr=0.1), batch_size=7,
                  epochs=3, verbose=0, seed=43)
    assert h["loss"] != runs[0][0]


def test_fit_without_shuffle_visits_batches_in_order(rng):
    seen = []

    class Spy(Sequential):
        def forward(self, x):
            seen.append(x.to_numpy()[:, 0].copy())
            return super().forward(x)
    manual_seed(0)
    model = Spy(Linear(1, 1))
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    model.fit(x, x, loss=MSE(), optimizer=SGD(model.parameters(), lr=1e-4), batch_size=4, shuffle=False,
              verbose=0)
    assert [s.tolist() for s in seen] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_fit_on_an_iterable_of_batches_and_epoch_means(rng):
    model = _model()
    x, y = _data(rng, 12)
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]
    h = model.fit(batches, loss="cross_entropy", optimizer=SGD(model.parameters(), lr=1e-9), epochs=2,
                  verbose=0)
    l1 = float(SoftmaxCrossEntropy()(model(Tensor.from_numpy(x[:8])), y[:8]).item())
    l2 = float(SoftmaxCrossEntropy()(model(Tensor.from_numpy(x[8:])), y[8:]).item())
    np.testing.assert_allclose(h["loss"][-1], (8 * l1 + 4 * l2) / 12, rtol=1e-4)
    with pytest.raises(TypeError, match="one-shot"):
        model.fit(iter(batches), loss="cross_entropy", optimizer=SGD(model.parameters()), epochs=2, verbose=0)
    with pytest.raises(TypeError):
        model.fit(5, loss="cross_entropy", optimizer=SGD(model.parameters()), verbose=0)


def test_fit_validates_arguments(rng):
    model = _model()
    x, y = _data(rng, 8)
    opt = SGD(model.parameters())
    for kwargs in ({"epochs": 0}, {"batch_size": 0}):
        with pytest.raises(ValueError):
            model.fit(x, y, loss="cross_entropy", optimizer=opt, verbose=0, **kwargs)
    with pytest.raises(ShapeError):
        model.fit(x, y[:3], loss="cross_entropy", optimizer=opt, verbose=0)


def test_verbose_two_prints_one_line_per_epoch(rng, capsys):
    model = _model()
    x, y = _data(rng, 8)
    model.fit(x, y, loss="cross_entropy", optimizer=SGD(model.parameters()), epochs=2, verbose=2,
              metrics=["accuracy"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - loss: ") and "accuracy: " in lines[0]
    assert "seen: 8" in lines[1]


def test_verbose_one_draws_a_bar_per_epoch(rng, capsys, monkeypatch):
    model = _model()
    x, y = _data(rng, 8)
    model.fit(x, y, loss="cross_entropy", optimizer=SGD(model.parameters()), epochs=2, verbose=1)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Epoch 1/2" in text and "Epoch 2/2" in text
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)  # fall back to plain text
    model.fit(x, y, loss="cross_entropy", optimizer=SGD(model.parameters()), epochs=1, verbose=1)
    assert capsys.readouterr().out.startswith("Epoch 1/1 - loss: ")


def test_metrics_helpers():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert M.accuracy(np.array([0, 1, 1]), logits) == pytest.approx(2 / 3)
    assert M.categorical_accuracy(np.eye(2)[[0, 1, 0]], Tensor.from_numpy(logits)) == 1.0
    assert M.binary_accuracy(np.array([1, 0, 1]), np.array([[0.9], [0.2], [0.4]])) == pytest.approx(2 / 3)
    assert M.binary_accuracy(np.array([1, 0]), np.array([0.5, -0.1]), threshold=0.0) == 1.0
    assert M.accuracy(np.array([1, 0]), np.array([[0.7], [0.1]])) == 1.0
    with pytest.raises(ValueError):
        M.get_metric("bogus")
    with pytest.raises(ShapeError):
        M.categorical_accuracy(np.array([0, 1]), np.array([0.3, 0.2]))


# ---- issue 8 item 10: fit takes lists and other array-likes ---------------------------------------------
def test_fit_and_evaluate_accept_lists(rng):
    x, y = _data(rng)
    model = _model()
    hist = model.fit(x.tolist(), y.tolist(), loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1),
                     batch_size=8, epochs=3, verbose=0)
    assert len(hist["loss"]) == 3 and hist["loss"][-1] < hist["loss"][0]
    assert model.evaluate(x.tolist(), y.tolist(), SoftmaxCrossEntropy())["loss"] == pytest.approx(
        model.evaluate(x, y, SoftmaxCrossEntropy())["loss"], rel=1e-6)


@pytest.mark.parametrize("x", [[[1.0, 2.0], [3.0]], ["a", "b"], 3.0], ids=["ragged", "strings", "scalar"])
def test_fit_rejects_what_it_cannot_take_with_a_keydnn_error(x):
    model = Sequential(Linear(2, 1))
    with pytest.raises(KeyDNNError, match="^Model.fit: x and y must be Tensors, ndarrays or"):
        model.fit(x, [1.0, 2.0], loss="mse", optimizer=SGD(model.parameters(), lr=0.1), verbose=0)


# ---- issue 8 item 11: a tuple between layers gets a short error with the fix ---------------------------
def test_sequential_lstm_returning_state_says_to_pass_return_state_false():
    from keydnn.nn import LSTM

    model = Sequential(LSTM(4, 6), Linear(6, 2))
    with pytest.raises(DTypeError) as info:
        model(Tensor.randn((5, 3, 4)))
    msg = str(info.value)
    assert "return_state=False" in msg and "layer 0 (LSTM) returned a tuple of 2" in msg
    assert len(msg) < 300 and "Tensor(" not in msg
    fixed = Sequential(LSTM(4, 6, return_sequences=False, return_state=False), Linear(6, 2))
    assert fixed(Tensor.randn((5, 3, 4))).shape == (3, 2)


def test_an_error_naming_a_container_operand_does_not_dump_it():
    with pytest.raises(DTypeError) as info:
        Linear(6, 2)((Tensor.randn((3, 6)), Tensor.randn((3, 6))))
    assert "tuple of 2" in str(info.value) and len(str(info.value)) < 200


# ---- issue 8 item 12: one error type per kind of mistake; out-of-range values rejected ------------------
@pytest.mark.parametrize("make", [
    lambda: Conv2d(3, 8, 0), lambda: Conv2d(-1, 8, 3), lambda: Conv2d(3.5, 8, 3), lambda: Conv2d(3, 8, 3, groups=2),
    lambda: Linear(0, 2), lambda: Linear(2, True), lambda: Dense(0), lambda: BatchNorm1d(0), lambda: LayerNorm(0),
    lambda: Conv2dTranspose(3, 8, 3, stride=1, output_padding=1)])
def test_bad_sizes_in_constructors_are_shape_errors(make):
    with pytest.raises(ShapeError):
        make()


@pytest.mark.parametrize("make", [
    lambda: Conv2d(3, 8, 3, padding="full"), lambda: Conv2d(3, 8, 3, stride=2, padding="same"),
    lambda: Dropout(1.0), lambda: BatchNorm1d(4, momentum=2.0), lambda: LayerNorm(4, eps=0.0),
    lambda: MSE(reduction="avg"), lambda: SGD(Linear(2, 2).parameters(), lr=-1.0),
    lambda: SGD(Linear(2, 2).parameters(), lr=0.1, nesterov=True)])
def test_bad_values_in_constructors_are_argument_errors(make):
    with pytest.raises(ArgumentError):
        make()
    assert issubclass(ArgumentError, ValueError) and issubclass(ShapeError, ValueError)  # seed's ValueError kept


@pytest.mark.parametrize("kw", [{"verbose": 3}, {"verbose": -1}, {"verbose": "loud"}, {"epochs": 2.5},
                                {"epochs": 0}, {"batch_size": 0}, {"batch_size": True}])
def test_fit_rejects_out_of_range_settings(rng, kw):
    x, y = _data(rng)
    model = _model()
    with pytest.raises(ArgumentError, match="^Model.fit"):
        model.fit(x, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1), **kw)


def test_fit_accepts_keras_verbose_spellings(rng, capsys):
    x, y = _data(rng)
    model = _model()
    for verbose in ("auto", False, 0, 2):
        model.fit(x, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1), verbose=verbose)
    assert "Epoch 1/1" in capsys.readouterr().out  # verbose=2 prints a line


def test_evaluate_with_nothing_to_compute_raises(rng):
    x, y = _data(rng)
    with pytest.raises(ArgumentError, match="^Model.evaluate: nothing to compute"):
        _model().evaluate(x, y)
    assert set(_model().evaluate(x, y, metrics=["accuracy"])) == {"accuracy"}
