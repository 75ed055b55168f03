"""Losses: values and gradients against closed forms and PyTorch, reductions, stability, seed Fn names."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure import losses as L


def _torch():
    return pytest.importorskip("torch")


def _grad(loss_fn, pred_np, target):
    p = Tensor.from_numpy(pred_np, requires_grad=True)
    out = loss_fn(p, target)
    out.backward()
    return float(out.item()), p.grad.to_numpy()


@pytest.fixture
def reg(rng):
    return rng.standard_normal((4, 3)), rng.standard_normal((4, 3))


def test_sse_and_mse_closed_forms(reg):
    p, t = reg
    v, g = _grad(L.SSE(), p, t)
    np.testing.assert_allclose(v, ((p - t) ** 2).sum())
    np.testing.assert_allclose(g, 2 * (p - t))
    v, g = _grad(L.SSE(reduction="mean"), p, t)
    np.testing.assert_allclose(v, ((p - t) ** 2).sum() / 4)
    v, g = _grad(L.MSE(), p, t)
    np.testing.assert_allclose(v, ((p - t) ** 2).mean())
    np.testing.assert_allclose(g, 2 * (p - t) / p.size)
    v, _ = _grad(L.MSE(reduction="sum"), p, t)
    np.testing.assert_allclose(v, ((p - t) ** 2).sum())
    per = L.mse(Tensor.from_numpy(p), t, reduction="none")
    assert per.shape == (4, 3)


def _probs(rng, shape):
    return 1 / (1 + np.exp(-rng.standard_normal(shape)))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_match_torch(rng, reduction):
    torch = _torch()
    F = torch.nn.functional
    p = _probs(rng, (5, 3))
    t = (rng.random((5, 3)) > 0.5).astype(np.float64)
    z = rng.standard_normal((5, 3)) * 4
    logits = rng.standard_normal((6, 4)) * 3
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    cases = [
        (L.MSE(reduction), p, t, lambda x: F.mse_loss(x, torch.from_numpy(t), reduction=reduction)),
        (L.BinaryCrossEntropy(reduction), p, t,
         lambda x: F.binary_cross_entropy(x, torch.from_numpy(t), reduction=reduction)),
        (L.BCEWithLogits(reduction), z, t,
         lambda x: F.binary_cross_entropy_with_logits(x, torch.from_numpy(t), reduction=reduction)),
        (L.SoftmaxCrossEntropy(reduction), logits, Tensor.from_numpy(labels),
         lambda x: F.cross_entropy(x, torch.from_numpy(labels), reduction=reduction)),
        (L.SoftmaxCrossEntropy(reduction), logits, onehot,
         lambda x: F.cross_entropy(x, torch.from_numpy(onehot), reduction=reduction)),
        (L.CategoricalCrossEntropy(reduction), np.exp(logits) / np.exp(logits).sum(1, keepdims=True), onehot,
         lambda x: F.nll_loss(x.log(), torch.from_numpy(labels), reduction=reduction)),
    ]
    for loss, x_np, target, ref in cases:
        v, g = _grad(loss, x_np, target)
        tx = torch.from_numpy(x_np).requires_grad_()
        tv = ref(tx)
        tv.backward()
        np.testing.assert_allclose(v, tv.item(), rtol=1e-6, err_msg=repr(loss))
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=repr(loss))


def test_bce_with_logits_is_stable_and_exact_at_zero():
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    t = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    v, g = _grad(lambda a, b: L.binary_cross_entropy_with_logits(a, b, "none").sum(), z, t)
    sig = 1 / (1 + np.exp(-np.clip(z, -700, 700)))
    assert np.isfinite(v) and np.isfinite(g).all()
    np.testing.assert_allclose(g, sig - t, atol=1e-12)  # sigma(0) - 1 = -0.5 exactly at z = 0
    np.testing.assert_allclose(v, 1000 + 0 + np.log(2) + np.log1p(np.exp(-30)) + 1000, rtol=1e-12)


def test_bce_on_probabilities_is_clipped():
    v, g = _grad(L.BinaryCrossEntropy(), np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert np.isfinite(v) and np.isfinite(g).all()
    np.testing.assert_allclose(v, -np.log(1e-7), rtol=1e-6)


def test_softmax_cross_entropy_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    v, g = _grad(L.SoftmaxCrossEntropy(), logits, np.array([2, 1]))
    np.testing.assert_allclose(v, (2e4 + np.log(3)) / 2, rtol=1e-9)
    assert np.isfinite(g).all()


def test_loss_errors_name_the_op():
    with pytest.raises(ShapeError, match="mse"):
        L.mse(Tensor.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="reduction"):
        L.MSE(reduction="avg")
    with pytest.raises(DTypeError, match="softmax_cross_entropy"):
        L.softmax_cross_entropy(Tensor.ones((2, 3)), Tensor.from_numpy(np.array([True, False])))
    with pytest.raises(ShapeError, match="labels must be in"):
        L.softmax_cross_entropy(Tensor.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ShapeError, match=r"got range \[-1, 0\]"):  # NumPy would wrap -1 around silently
        L.softmax_cross_entropy(Tensor.ones((2, 3)), np.array([0, -1]))


def test_seed_function_style_names(reg):
    p_np, t_np = reg
    for fn, ref_value, ref_grad in [
        (L.SSEFn, ((p_np - t_np) ** 2).sum(), 2 * (p_np - t_np)),
        (L.MSEFn, ((p_np - t_np) ** 2).mean(), 2 * (p_np - t_np) / p_np.size),
    ]:
        class Ctx:
            pass
        ctx = Ctx()
        p = Tensor.from_numpy(p_np, requires_grad=True)
        out = fn.forward(ctx, p, Tensor.from_numpy(t_np))
        np.testing.assert_allclose(out.item(), ref_value)
        gp, gt = fn.backward(ctx, 1.0)
        np.testing.assert_allclose(gp.to_numpy(), ref_grad)
        np.testing.assert_allclose(gt.to_numpy(), -ref_grad)
        out.backward()  # the forward's own graph gives the same gradient
        np.testing.assert_allclose(p.grad.to_numpy(), ref_grad)


def test_seed_cross_entropy_fns_backward_matches_autograd(rng):
    probs = _probs(rng, (3, 4))
    bt = (rng.random((3, 4)) > 0.5).astype(np.float64)
    sm = np.exp(probs) / np.exp(probs).sum(1, keepdims=True)
    onehot = np.eye(4)[[0, 3, 1]]
    for fn, p_np, t_np in [(L.BinaryCrossEntropyFn, probs, bt), (L.CategoricalCrossEntropyFn, sm, onehot)]:
        class Ctx:
            pass
        ctx = Ctx()
        p = Tensor.from_numpy(p_np, requires_grad=True)
        out = fn.forward(ctx, p, t_np)
        out.backward()
        gp, gt = fn.backward(ctx, Tensor.from_numpy(np.array(2.0)))
        assert gt is None
        np.testing.assert_allclose(gp.to_numpy(), 2 * p.grad.to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(fn.apply(Tensor.from_numpy(p_np), t_np).item(), out.item())


def test_get_loss_by_name_class_and_callable():
    assert isinstance(L.get_loss("mse"), L.MSE)
    assert isinstance(L.get_loss(L.SoftmaxCrossEntropy), L.SoftmaxCrossEntropy)
    assert L.get_loss(L.MSEFn) == L.MSEFn.apply
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("bogus")
    with pytest.raises(TypeError):
        L.get_loss(3)


# ---- issue 8 item 4: BCE on values outside [0, 1] raises ------------------------------------------------
@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
@pytest.mark.parametrize("loss", [L.BCELoss(), L.get_loss("binary_crossentropy"), L.binary_cross_entropy,
                                  L.BinaryCrossEntropyFn.apply], ids=["BCELoss", "keras_name", "fn", "seed_fn"])
def test_bce_rejects_probabilities_outside_0_1(loss, bad):
    pred = Tensor.from_numpy(np.array([0.2, bad, 0.7], np.float32))
    with pytest.raises(ShapeError, match="binary_cross_entropy: expects probabilities in \\[0, 1\\]"):
        loss(pred, np.array([0.0, 1.0, 1.0], np.float32))


def test_bce_still_clips_probabilities_at_the_edges():
    value = L.BCELoss()(Tensor.from_numpy(np.array([0.0, 1.0])), np.array([0.0, 1.0])).item()
    assert np.isfinite(value) and value < 1e-5


# ---- issue 8 item 5: Keras loss names mean what they mean in Keras ---------------------------------------
def _softmax_probs(rng, n=6, c=4):
    z = rng.standard_normal((n, c))
    return z, np.exp(z) / np.exp(z).sum(1, keepdims=True)


def test_sparse_categorical_crossentropy_takes_probabilities_as_in_keras(rng):
    z, p = _softmax_probs(rng)
    labels = np.array([0, 3, 1, 2, 2, 0])
    expected = -np.log(p[np.arange(6), labels]).mean()
    got = L.get_loss("sparse_categorical_crossentropy")(Tensor.from_numpy(p), labels).item()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    logits = L.SparseCategoricalCrossentropy(from_logits=True)(Tensor.from_numpy(z), labels).item()
    np.testing.assert_allclose(logits, expected, rtol=1e-10)
    lv, g = _grad(L.SparseCategoricalCrossEntropy(), p, labels)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(g, -onehot / p / 6, rtol=1e-10)


def test_categorical_crossentropy_from_logits_matches_probabilities(rng):
    z, p = _softmax_probs(rng)
    onehot = np.eye(4)[[1, 0, 3, 3, 2, 1]]
    expected = -(onehot * np.log(p)).sum(1).mean()
    for loss, pred in ((L.get_loss("categorical_crossentropy"), p),
                       (L.CategoricalCrossentropy(from_logits=True), z)):
        np.testing.assert_allclose(loss(Tensor.from_numpy(pred), onehot).item(), expected, rtol=1e-10)


def test_binary_crossentropy_from_logits(rng):
    z = rng.standard_normal((5, 2))
    t = (rng.random((5, 2)) > 0.5).astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    got = L.BinaryCrossentropy(from_logits=True)(Tensor.from_numpy(z), t).item()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert L.BinaryCrossEntropy(from_logits=True).get_config()["from_logits"] is True


def test_a_softmax_head_with_the_keras_name_gets_no_double_softmax(rng):
    from keydnn.nn import Linear, Sequential, Softmax
    from keydnn.optim import SGD

    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    model = Sequential(Linear(5, 3), Softmax())
    before = model.evaluate(x, y, loss="sparse_categorical_crossentropy")["loss"]
    model.fit(x, y, loss="sparse_categorical_crossentropy", optimizer=SGD(model.parameters(), lr=0.5),
              epochs=60, batch_size=64, verbose=0)
    p = model.predict(x).to_numpy()
    keras_value = -np.log(p[np.arange(64), y]).mean()
    logs = model.evaluate(x, y, loss="sparse_categorical_crossentropy")
    np.testing.assert_allclose(logs["loss"], keras_value, rtol=1e-5)
    assert keras_value < 0.7 * before
