"""Recurrent layers over the sequence ops: PyTorch parity of outputs and every gradient for stacked RNN, LSTM and
GRU (reset_after=True) and for Bidirectional, the merge modes, batch_first, inter-layer dropout, bad input, a
graph whose size does not grow with T, and checkpoints of the new options."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.autograd import _topological_order
from keydnn.infrastructure.recurrent import GRU, LSTM, RNN, Bidirectional, GRUCell
from keydnn.nn import load_json, save_json

torch = pytest.importorskip("torch")

KINDS = {"RNN": (RNN, 1), "LSTM": (LSTM, 4), "GRU": (GRU, 3)}


def _torch_layout(name, w):
    """Our (in, G*H) weight or (G*H,) bias as PyTorch's (G*H, in) / (G*H,), GRU blocks z, r, n -> r, z, n."""
    w = np.asarray(w).T if np.ndim(w) == 2 else np.asarray(w)
    if name == "GRU":
        n = w.shape[0] // 3
        w = np.concatenate([w[n:2 * n], w[:n], w[2 * n:]])
    return w


def _ours_from_torch(name, w):
    w = np.asarray(w)
    if name == "GRU":
        n = w.shape[0] // 3
        w = np.concatenate([w[n:2 * n], w[:n], w[2 * n:]])
    return w.T.copy() if w.ndim == 2 else w.copy()


def _copy_torch_weights(name, ours_layers, ref):
    """Load PyTorch's weights into our layer(s): ours_layers[d] is the direction d layer (suffix '_reverse')."""
    for d, layer in enumerate(ours_layers):
        for i, cell in enumerate(layer.cells):
            sfx = f"_l{i}" + ("_reverse" if d else "")
            for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"),
                                 ("b_hh", "bias_hh")):
                getattr(cell, ours).copy_from_numpy(_ours_from_torch(name, getattr(ref, theirs + sfx).detach().numpy()))


def _grads_vs_torch(name, ours_layers, ref, tx, x, extra=()):
    assert np.allclose(x.grad.to_numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    for d, layer in enumerate(ours_layers):
        for i, cell in enumerate(layer.cells):
            sfx = f"_l{i}" + ("_reverse" if d else "")
            for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"),
                                 ("b_hh", "bias_hh")):
                want = _ours_from_torch(name, getattr(ref, theirs + sfx).grad.numpy())
                np.testing.assert_allclose(getattr(cell, ours).grad.to_numpy(), want, rtol=1e-9, atol=1e-10,
                                           err_msg=f"{name} {ours}{sfx}")
    for ours_t, theirs_t in extra:
        np.testing.assert_allclose(ours_t.grad.to_numpy(), theirs_t.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_stacked_layers_match_torch(name, batch_first):
    cls, _ = KINDS[name]
    rng = np.random.default_rng(0)
    steps, batch, features, hidden, layers = 5, 3, 4, 6, 3
    ref = getattr(torch.nn, name)(features, hidden, num_layers=layers, batch_first=batch_first).double()
    kw = {"reset_after": True} if name == "GRU" else {}
    ours = cls(features, hidden, num_layers=layers, batch_first=batch_first, dtype="float64", **kw)
    _copy_torch_weights(name, [ours], ref)
    shape = (batch, steps, features) if batch_first else (steps, batch, features)
    x_np, h0_np = rng.standard_normal(shape), rng.standard_normal((layers, batch, hidden))
    tx, th0 = torch.tensor(x_np, requires_grad=True), torch.tensor(h0_np, requires_grad=True)
    x, h0 = Tensor.from_numpy(x_np, requires_grad=True), Tensor.from_numpy(h0_np, requires_grad=True)
    w = rng.standard_normal(shape[:2] + (hidden,))
    if name == "LSTM":
        c0_np = rng.standard_normal((layers, batch, hidden))
        tc0, c0 = torch.tensor(c0_np, requires_grad=True), Tensor.from_numpy(c0_np, requires_grad=True)
        t_out, (t_h, t_c) = ref(tx, (th0, tc0))
        seq, (h, c) = ours(x, h0, c0)
        np.testing.assert_allclose(c.to_numpy(), t_c.detach().numpy(), rtol=1e-10, atol=1e-12)
        extra = [(h0, th0), (c0, tc0)]
        (t_out * torch.tensor(w)).sum().add_((t_h * t_c).sum()).backward()
        ((seq * Tensor.from_numpy(w)).sum() + (h * c).sum()).backward()
    else:
        t_out, t_h = ref(tx, th0)
        seq, h = ours(x, h0)
        extra = [(h0, th0)]
        ((t_out * torch.tensor(w)).sum() + (t_h * t_h).sum()).backward()
        ((seq * Tensor.from_numpy(w)).sum() + (h * h).sum()).backward()
    np.testing.assert_allclose(seq.to_numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.to_numpy(), t_h.detach().numpy(), rtol=1e-10, atol=1e-12)
    _grads_vs_torch(name, [ours], ref, tx, x, extra)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_bidirectional_matches_torch(name):
    cls, _ = KINDS[name]
    rng = np.random.default_rng(1)
    ref = getattr(torch.nn, name)(3, 5, bidirectional=True).double()
    kw = {"reset_after": True} if name == "GRU" else {}
    bi = Bidirectional(cls(3, 5, dtype="float64", **kw))
    _copy_torch_weights(name, [bi.forward_layer, bi.backward_layer], ref)
    x_np = rng.standard_normal((6, 2, 3))
    tx, x = torch.tensor(x_np, requires_grad=True), Tensor.from_numpy(x_np, requires_grad=True)
    t_out = ref(tx)[0]
    out = bi(x)
    np.testing.assert_allclose(out.to_numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(out.shape)
    (t_out * torch.tensor(w)).sum().backward()
    (out * Tensor.from_numpy(w)).sum().backward()
    _grads_vs_torch(name, [bi.forward_layer, bi.backward_layer], ref, tx, x)


@pytest.mark.parametrize("mode,merge", [("sum", np.add), ("mul", np.multiply),
                                        ("ave", lambda a, b: (a + b) / 2), ("concat", None)])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_merge_modes(mode, merge, return_sequences):
    rng = np.random.default_rng(2)
    bi = Bidirectional(LSTM(3, 4, dtype="float64", num_layers=2), merge_mode=mode,
                       return_sequences=return_sequences)
    x = Tensor.from_numpy(rng.standard_normal((5, 2, 3)), requires_grad=True)
    out = bi(x)
    seq_f = bi.forward_layer(x)[0].to_numpy()
    seq_b = bi.backward_layer.run(x, reverse=True)[0].to_numpy()
    a, b = (seq_f, seq_b) if return_sequences else (seq_f[-1], seq_b[0])
    want = np.concatenate([a, b], -1) if merge is None else merge(a, b)
    np.testing.assert_allclose(out.to_numpy(), want, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in bi.parameters())


def test_batch_first_is_the_transposed_time_major_layer():
    rng = np.random.default_rng(3)
    tm = GRU(3, 4, num_layers=2, dtype="float64")
    bf = GRU.from_config({**tm.get_config(), "batch_first": True})
    bf.load_state_dict(tm.state_dict())
    x = rng.standard_normal((5, 2, 3))
    seq_tm, h_tm = tm(Tensor.from_numpy(x))
    seq_bf, h_bf = bf(Tensor.from_numpy(x.transpose(1, 0, 2).copy()))
    np.testing.assert_allclose(seq_bf.to_numpy(), seq_tm.to_numpy().transpose(1, 0, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_bf.to_numpy(), h_tm.to_numpy(), rtol=1e-12, atol=1e-12)


def test_inter_layer_dropout_only_in_training_and_only_between_layers():
    rng = np.random.default_rng(4)
    x = Tensor.from_numpy(rng.standard_normal((6, 3, 4)))
    plain = LSTM(4, 5, num_layers=2, return_state=False, dtype="float64")
    dropped = LSTM.from_config({**plain.get_config(), "dropout": 0.5})
    dropped.load_state_dict(plain.state_dict())
    assert not np.allclose(dropped(x).to_numpy(), plain(x).to_numpy())
    dropped.eval()
    np.testing.assert_allclose(dropped(x).to_numpy(), plain(x).to_numpy(), rtol=0, atol=0)
    single = RNN(4, 5, dropout=0.5, return_state=False, dtype="float64")  # one layer: nothing between layers
    np.testing.assert_allclose(single(x).to_numpy(), single(x).to_numpy(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="dropout"):
        GRU(4, 5, dropout=1.0)
    with pytest.raises(ValueError, match="num_layers"):
        GRU(4, 5, num_layers=0)


def test_graph_size_does_not_grow_with_sequence_length():
    """The sequence op is one node however long the sequence (the old layers made ~10 nodes per step)."""
    sizes = []
    for steps in (4, 64):
        layer = LSTM(3, 4, return_state=False)
        out = layer(Tensor.randn((steps, 2, 3), requires_grad=True))
        sizes.append(len(_topological_order(out._node)))
    assert sizes[0] == sizes[1] <= 4


def test_bad_input_raises_keydnn_errors():
    with pytest.raises(ShapeError, match=r"batch-first input \(N, T, 3\)"):
        GRU(3, 4, batch_first=True)(Tensor.randn((2, 5, 6)))
    with pytest.raises(ShapeError, match="single step"):
        LSTM(3, 4)(Tensor.randn((2, 3)))
    with pytest.raises(ShapeError, match=r"initial h0 must be \(2, 2, 4\)"):
        RNN(3, 4, num_layers=2)(Tensor.randn((5, 2, 3)), Tensor.randn((2, 4)))
    with pytest.raises(ShapeError, match=r"initial c0 must be \(2, 4\)"):
        LSTM(3, 4)(Tensor.randn((5, 2, 3)), Tensor.randn((2, 4)), Tensor.randn((5, 4)))
    # a batch-first tensor given to a time-major layer: the state's N names the mix-up
    with pytest.raises(ShapeError, match=r"N=5 from the input \(T, N, D\)"):
        GRU(3, 4)(Tensor.randn((2, 5, 3)), Tensor.randn((2, 4)))
    with pytest.raises(ShapeError, match=r"N=2 from the input \(N, T, D\)"):
        GRU(3, 4, batch_first=True)(Tensor.randn((2, 5, 3)), Tensor.randn((5, 4)))


def test_new_options_round_trip_through_checkpoints(tmp_path):
    rng = np.random.default_rng(5)
    model = Bidirectional(GRU(3, 4, num_layers=2, batch_first=True, reset_after=True, dropout=0.1),
                          merge_mode="ave", return_sequences=False)
    save_json(model, tmp_path / "m.json")
    back = load_json(tmp_path / "m.json")
    assert back.merge_mode == "ave" and back.forward_layer.num_layers == 2 and back.backward_layer.reset_after
    assert back.forward_layer.cell_1.reset_after and back.forward_layer.batch_first
    model.eval()
    back.eval()
    x = Tensor.from_numpy(rng.standard_normal((2, 5, 3)).astype(np.float32))
    np.testing.assert_allclose(back(x).to_numpy(), model(x).to_numpy(), rtol=0, atol=0)


def test_gru_cell_reset_after_matches_the_layer_step():
    rng = np.random.default_rng(6)
    layer = GRU(3, 4, reset_after=True, return_state=False, dtype="float64")
    cell = GRUCell.from_config(layer.cell.get_config())
    cell.load_state_dict(layer.cell.state_dict())
    x = rng.standard_normal((1, 2, 3))
    np.testing.assert_allclose(cell(Tensor.from_numpy(x[0])).to_numpy(), layer(Tensor.from_numpy(x)).to_numpy()[0],
                               rtol=1e-12, atol=1e-12)
