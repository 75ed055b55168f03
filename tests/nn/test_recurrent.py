"""Recurrent layers: cells against NumPy references, the seed's return conventions, float64 finite-difference
gradients through time, PyTorch parity for RNN and LSTM, Bidirectional, checkpoints and a training run."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.recurrent import GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, RNNCell
from keydnn.nn import load_json, save_json


def _np(p):
    return p.to_numpy().astype(np.float64)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_step(cell, x, h, c=None):
    """One step of ``cell`` in NumPy (float64), from its own parameters."""
    w_ih, w_hh, n = _np(cell.W_ih), _np(cell.W_hh), cell.hidden_size
    b_ih = _np(cell.b_ih) if cell.use_bias else 0.0
    b_hh = _np(cell.b_hh) if cell.use_bias else np.zeros(w_hh.shape[1])
    if isinstance(cell, RNNCell):
        return np.tanh(x @ w_ih + b_ih + h @ w_hh + b_hh)
    if isinstance(cell, LSTMCell):
        z = x @ w_ih + b_ih + h @ w_hh + b_hh
        i, f, g, o = _sig(z[:, :n]), _sig(z[:, n:2 * n]), np.tanh(z[:, 2 * n:3 * n]), _sig(z[:, 3 * n:])
        c = f * c + i * g
        return o * np.tanh(c), c
    gx = x @ w_ih + b_ih
    z = _sig(gx[:, :n] + h @ w_hh[:, :n] + b_hh[:n])
    r = _sig(gx[:, n:2 * n] + h @ w_hh[:, n:2 * n] + b_hh[n:2 * n])
    cand = np.tanh(gx[:, 2 * n:] + (r * h) @ w_hh[:, 2 * n:] + b_hh[2 * n:])
    return (1 - z) * cand + z * h


def ref_sequence(layer, x, reverse=False):
    n, h = x.shape[1], layer.hidden_size
    state = (np.zeros((n, h)), np.zeros((n, h))) if isinstance(layer, LSTM) else np.zeros((n, h))
    hs = [None] * len(x)
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        state = ref_step(layer.cell, x[t], *state) if isinstance(layer, LSTM) else ref_step(layer.cell, x[t], state)
        hs[t] = state[0] if isinstance(layer, LSTM) else state
    return np.stack(hs), state


@pytest.mark.parametrize("cell_type", [RNNCell, LSTMCell, GRUCell])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_numpy(cell_type, bias):
    rng = np.random.default_rng(0)
    cell = cell_type(5, 4, bias=bias, dtype="float64")
    x, h, c = rng.standard_normal((3, 5)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    if cell_type is LSTMCell:
        got_h, got_c = cell(Tensor.from_numpy(x), Tensor.from_numpy(h), Tensor.from_numpy(c))
        ref_h, ref_c = ref_step(cell, x, h, c)
        np.testing.assert_allclose(got_c.to_numpy(), ref_c, rtol=1e-12, atol=1e-12)
    else:
        got_h, ref_h = cell(Tensor.from_numpy(x), Tensor.from_numpy(h)), ref_step(cell, x, h)
    np.testing.assert_allclose(got_h.to_numpy(), ref_h, rtol=1e-12, atol=1e-12)
    assert all(abs(_np(p)).max() <= 1 / np.sqrt(4) for p in cell.parameters())  # U(+-1/sqrt(H)) init


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_sequences_match_numpy_and_return_conventions(layer_type):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, 3))
    layer = layer_type(3, 4, dtype="float64")
    ref_seq, ref_state = ref_sequence(layer, x)
    seq, state = layer(Tensor.from_numpy(x))  # return_sequences=True, return_state=True
    np.testing.assert_allclose(seq.to_numpy(), ref_seq, rtol=1e-12, atol=1e-12)
    last = state[0] if layer_type is LSTM else state
    np.testing.assert_allclose(last.to_numpy(), ref_seq[-1], rtol=1e-12, atol=1e-12)
    xt = Tensor.from_numpy(x)
    cfg = layer.get_config()
    variants = {(s, r, k): layer_type.from_config({**cfg, "return_sequences": s, "return_state": r,
                                                   "keras_compat": k})
                for s in (True, False) for r in (True, False) for k in (True, False)}
    for (s, r, k), v in variants.items():
        v.load_state_dict(layer.state_dict())
        out = v(xt)
        if not r:
            assert isinstance(out, Tensor) and out.shape == ((6, 2, 4) if s else (2, 4))
        elif s:
            assert out[0].shape == (6, 2, 4)
        elif layer_type is LSTM:
            assert out[0].shape == (2, 4) and isinstance(out[1], tuple) and len(out[1]) == 2
        elif k:
            assert isinstance(out, tuple) and out[0] is out[1]
        else:
            assert isinstance(out, Tensor) and out.shape == (2, 4)
    if layer_type is LSTM:
        np.testing.assert_allclose(state[1].to_numpy(), ref_state[1], rtol=1e-12, atol=1e-12)


def test_initial_states_are_used():
    rng = np.random.default_rng(2)
    x, h0, c0 = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    lstm = LSTM(3, 5, return_state=False, dtype="float64")
    ref = []
    h, c = h0, c0
    for t in range(4):
        h, c = ref_step(lstm.cell, x[t], h, c)
        ref.append(h)
    got = lstm(Tensor.from_numpy(x), Tensor.from_numpy(h0), Tensor.from_numpy(c0))
    np.testing.assert_allclose(got.to_numpy(), np.stack(ref), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_gradients_through_time_match_finite_differences(layer_type):
    """Directional check in float64: d/de of sum(out * w) along a random direction, analytic vs central."""
    rng = np.random.default_rng(3)
    layer = layer_type(3, 4, return_state=False, dtype="float64")
    x = rng.standard_normal((5, 2, 3))
    w = rng.standard_normal((5, 2, 4))
    xt = Tensor.from_numpy(x, requires_grad=True)
    (layer(xt) * Tensor.from_numpy(w)).sum().backward()
    params = list(layer.parameters())
    analytic = [xt.grad.to_numpy()] + [p.grad.to_numpy() for p in params]
    values = [x] + [p.to_numpy().copy() for p in params]
    dirs = [rng.standard_normal(v.shape) for v in values]

    def loss(scale):
        for p, v, d in zip(params, values[1:], dirs[1:], strict=True):
            p.copy_from_numpy(v + scale * d)
        out = layer(Tensor.from_numpy(values[0] + scale * dirs[0]))
        return float((out.to_numpy() * w).sum())

    eps = 1e-6
    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    loss(0.0)
    exact = sum(float((a * d).sum()) for a, d in zip(analytic, dirs, strict=True))
    assert numeric == pytest.approx(exact, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("layer_type", [RNN, LSTM])
def test_rnn_and_lstm_match_pytorch(layer_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    layer = layer_type(3, 4, dtype="float64")
    x = rng.standard_normal((6, 2, 3))
    ref = (torch.nn.RNN if layer_type is RNN else torch.nn.LSTM)(3, 4).double()
    with torch.no_grad():  # torch keeps (G*H, D) weights: ours transposed; gate order i, f, g, o for both
        ref.weight_ih_l0.copy_(torch.from_numpy(_np(layer.cell.W_ih).T))
        ref.weight_hh_l0.copy_(torch.from_numpy(_np(layer.cell.W_hh).T))
        ref.bias_ih_l0.copy_(torch.from_numpy(_np(layer.cell.b_ih)))
        ref.bias_hh_l0.copy_(torch.from_numpy(_np(layer.cell.b_hh)))
    tx = torch.from_numpy(x).requires_grad_()
    t_out, _ = ref(tx)
    t_out.sum().backward()
    xt = Tensor.from_numpy(x, requires_grad=True)
    out, _ = layer(xt)
    out.sum().backward()
    np.testing.assert_allclose(out.to_numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad.to_numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.cell.W_hh.grad.to_numpy(), ref.weight_hh_l0.grad.numpy().T, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_bidirectional(layer_type):
    rng = np.random.default_rng(5)
    layer = layer_type(3, 4, dtype="float64")
    bi = Bidirectional(layer, return_state=True)
    assert bi.forward_layer is layer and bi.forward_rnn is layer and bi.backward_rnn is bi.backward_layer
    assert type(bi.backward_layer) is layer_type and len(list(bi.parameters())) == 8  # each weight once
    x = rng.standard_normal((5, 2, 3))
    out, state_f, state_b = bi(Tensor.from_numpy(x))
    fwd, _ = ref_sequence(bi.forward_layer, x)
    bwd, _ = ref_sequence(bi.backward_layer, x, reverse=True)
    np.testing.assert_allclose(out.to_numpy(), np.concatenate([fwd, bwd], axis=2), rtol=1e-12, atol=1e-12)
    last = Bidirectional(layer, return_sequences=False)
    last.backward_layer.load_state_dict(bi.backward_layer.state_dict())
    np.testing.assert_allclose(last(Tensor.from_numpy(x)).to_numpy(), np.concatenate([fwd[-1], bwd[0]], axis=1),
                               rtol=1e-12, atol=1e-12)
    out.sum().backward()
    assert layer.cell.W_ih.grad is not None and bi.backward_layer.cell.W_ih.grad is not None


def test_bidirectional_initial_states_and_errors():
    lstm = LSTM(3, 2)
    bi = Bidirectional(lstm, return_sequences=False)
    x = Tensor.randn((4, 1, 3))
    h, c = Tensor.randn((1, 2)), Tensor.randn((1, 2))
    shared = bi(x, (h, c))
    both = bi(x, ((h, c), (h, c)))
    np.testing.assert_allclose(shared.to_numpy(), both.to_numpy())
    assert not np.allclose(shared.to_numpy(), bi(x).to_numpy())
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(lstm, merge_mode="max")
    with pytest.raises(TypeError, match="RNN, LSTM or GRU"):
        Bidirectional(RNNCell(3, 2))


def test_bad_input_raises_keydnn_errors():
    with pytest.raises(ShapeError, match=r"LSTM: expects time-major input \(T, N, 3\)"):
        LSTM(3, 2)(Tensor.randn((4, 2, 5)))
    with pytest.raises(ShapeError, match="empty"):
        GRU(3, 2)(Tensor.zeros((0, 2, 3)))
    with pytest.raises(ShapeError, match="RNNCell: expects states"):
        RNNCell(3, 2)(Tensor.randn((4, 3)), Tensor.randn((5, 2)))
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        GRUCell(3, 0)


def test_seed_readme_example_and_checkpoint_round_trip(tmp_path):
    # the seed README's example, as written
    from keydnn.infrastructure.recurrent import LSTM, GRU, Bidirectional  # noqa: F401, F811, I001

    model = Bidirectional(LSTM(input_size=16, hidden_size=32, return_sequences=True), return_sequences=True)
    x = Tensor.randn((7, 3, 16))
    assert model(x).shape == (7, 3, 64)
    gru = Bidirectional(GRU(4, 3), return_sequences=False)
    path = tmp_path / "bi_gru.json"
    save_json(gru, path)
    back = load_json(path)
    assert type(back.forward_layer) is GRU and type(back.backward_layer) is GRU  # the seed reloaded an RNN
    xs = Tensor.randn((5, 2, 4))
    np.testing.assert_allclose(back(xs).to_numpy(), gru(xs).to_numpy(), rtol=1e-6)


def test_lstm_learns_to_count_positive_steps():
    """A real training run: an LSTM + Linear head learns whether most steps of a sequence are positive."""
    from keydnn.nn import Linear, SoftmaxCrossEntropy
    from keydnn.optim import Adam

    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 64, 1)).astype(np.float32)
    y = ((x[:, :, 0] > 0).sum(0) > 4).astype(np.int64)
    lstm, head = LSTM(1, 8, return_sequences=False, return_state=False), Linear(8, 2)
    opt = Adam(list(lstm.parameters()) + list(head.parameters()), lr=0.05)
    loss_fn, xt, yt = SoftmaxCrossEntropy(), Tensor.from_numpy(x), Tensor.from_numpy(y)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn(head(lstm(xt)), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
