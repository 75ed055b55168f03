"""The recurrent sequence ops on cuDNN's RNN API (backends/cuda/rnn.py): outputs and every gradient against the
KeyDNN CUDA path (KEYDNN_CUDNN_RNN=0) and against PyTorch on CUDA, float32 and float64; layers (stacks,
batch_first, Bidirectional), the descriptor cache, the fallbacks, errors, the kernel-trace label, and the
binding's constants against cudnn_adv.h where the header is installed.

Every cuDNN-path check first asserts that cuDNN ran (``last_kernel``), printing ``fallbacks`` (cuDNN's own
status string) when it did not, so a refusal reads as such and not as a numerical mismatch.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.op_specs import recurrent as specs
from keydnn.infrastructure.ops import recurrent as rec
from keydnn.infrastructure.recurrent import GRU, LSTM, RNN, Bidirectional

pytestmark = pytest.mark.cuda
DEV = "cuda:0"


def _flip(torch, t, reverse):
    return torch.flip(t, [0]) if reverse else t


# PyTorch's fused ops over KeyDNN-layout weights, as op_specs/recurrent.py calls them but with train=True
# (PyTorch's cuDNN RNN backward runs only after a training-mode forward).
def _rnn_torch(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    import torch
    params = [w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh]  # torch's cuDNN path refuses views
    out, _ = torch.rnn_tanh(_flip(torch, x, reverse), h0[None], params, True, 1, 0.0,
                            True, False, False)
    return _flip(torch, out, reverse)


def _lstm_torch(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    import torch
    params = [w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh]
    out, _, c = torch.lstm(_flip(torch, x, reverse), (h0[None], c0[None]), params, True,
                           1, 0.0, True, False, False)
    return torch.cat([_flip(torch, out, reverse), c])


def _gru_torch(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    import torch
    params = [specs._rzn(w_ih.t()), specs._rzn(w_hh.t()), specs._rzn(b_ih), specs._rzn(b_hh)]
    out, _ = torch.gru(_flip(torch, x, reverse), h0[None], params, True, 1, 0.0, True, False, False)
    return _flip(torch, out, reverse)


# name: (op, states, gates, torch oracle over KeyDNN-layout weights)
CELLS = {"rnn": (rec.rnn_sequence, 1, 1, _rnn_torch), "lstm": (rec.lstm_sequence, 2, 4, _lstm_torch),
         "gru": (specs._gru_after, 1, 3, _gru_torch)}
TOL = {"float32": (2e-4, 2e-5), "float64": (1e-9, 1e-11)}  # atol is relative to the reference's largest entry
CASES = [(1, 1, 3, 4, False), (5, 3, 4, 6, False), (4, 2, 3, 5, True), (7, 1, 2, 3, True), (6, 4, 8, 16, False)]
GRAD_NAMES = {1: ("x", "h0", "W_ih", "W_hh", "b_ih", "b_hh"), 2: ("x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh")}


@pytest.fixture()
def rnn(kt):
    from keydnn.infrastructure.backends.cuda import rnn

    return rnn


def _arrays(cell, steps, batch, features, hidden, dtype, seed=0):
    _, states, gates, _ = CELLS[cell]
    rng = np.random.default_rng(seed)

    def u(*shape, s=0.5):
        return rng.uniform(-s, s, shape).astype(dtype)
    return [u(steps, batch, features, s=1.5), *[u(batch, hidden, s=1.0) for _ in range(states)],
            u(features, gates * hidden), u(hidden, gates * hidden), u(gates * hidden), u(gates * hidden)]


def _mask(cell, steps, batch, hidden, dtype, seed=1):
    rows = steps + (cell == "lstm")
    return np.random.default_rng(seed).standard_normal((rows, batch, hidden)).astype(dtype)


def _close(got, want, dtype, what):
    rtol, atol = TOL[dtype]
    scale = max(float(np.abs(want).max()), 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def _keydnn(rnn, monkeypatch, cell, arrays, reverse, mask, cudnn):
    """(out, grads, (forward kernel, backward kernel)) of sum(op(...) * mask) on cuda:0."""
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1" if cudnn else "0")
    fn = CELLS[cell][0]
    ts = [None if a is None else Tensor.from_numpy(a, device=DEV, requires_grad=True) for a in arrays]
    out = fn(*ts, reverse=reverse)
    (out * Tensor.from_numpy(mask, device=DEV)).sum().backward()
    ran = (rnn.last_kernel.get(f"{cell}_sequence_forward"), rnn.last_kernel.get(f"{cell}_sequence_backward"))
    return out.to_numpy(), [None if t is None else t.grad.to_numpy() for t in ts], ran


def _assert_cudnn_ran(rnn, ran, what):
    assert ran == (rnn.CUDNN, rnn.CUDNN), f"{what}: kernels that ran {ran}; cuDNN refusals: {rnn.fallbacks}"


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    torch.backends.cudnn.allow_tf32 = False  # PyTorch's cuDNN RNN would use TF32 on this GPU otherwise
    torch.backends.cuda.matmul.allow_tf32 = False
    return torch


def _torch(cell, arrays, reverse, mask):
    torch = _torch_cuda()
    ts = [torch.tensor(a, device="cuda", requires_grad=True) for a in arrays]
    out = CELLS[cell][3](*ts, reverse=reverse)
    (out * torch.tensor(mask, device="cuda")).sum().backward()
    return out.detach().cpu().numpy(), [t.grad.cpu().numpy() for t in ts]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "T{}N{}D{}H{}{}".format(*c[:4], "_rev" if c[4] else ""))
@pytest.mark.parametrize("cell", list(CELLS))
def test_op_matches_fallback_and_torch(rnn, monkeypatch, cell, case, dtype):
    steps, batch, features, hidden, reverse = case
    arrays = _arrays(cell, steps, batch, features, hidden, dtype)
    mask = _mask(cell, steps, batch, hidden, dtype)
    out, grads, ran = _keydnn(rnn, monkeypatch, cell, arrays, reverse, mask, cudnn=True)
    _assert_cudnn_ran(rnn, ran, f"{cell} {case} {dtype}")
    ref_out, ref_grads, ran_ref = _keydnn(rnn, monkeypatch, cell, arrays, reverse, mask, cudnn=False)
    assert ran_ref == (rnn.FALLBACK, rnn.FALLBACK)
    names = GRAD_NAMES[CELLS[cell][1]]
    _close(out, ref_out, dtype, f"{cell} output: cuDNN vs KeyDNN CUDA path")
    for name, g, r in zip(names, grads, ref_grads, strict=True):
        _close(g, r, dtype, f"{cell} d{name}: cuDNN vs KeyDNN CUDA path")
    t_out, t_grads = _torch(cell, arrays, reverse, mask)
    _close(out, t_out, dtype, f"{cell} output: cuDNN vs PyTorch")
    for name, g, r in zip(names, grads, t_grads, strict=True):
        _close(g, r, dtype, f"{cell} d{name}: cuDNN vs PyTorch")


@pytest.mark.parametrize("missing", ["h0", "b_ih", "b_hh", "all"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_missing_states_and_biases(rnn, monkeypatch, cell, missing):
    """None initial states (zeros) and absent biases (zeros in the weight space; no gradient)."""
    states = CELLS[cell][1]
    arrays = _arrays(cell, 4, 3, 2, 5, "float64")
    if missing in ("h0", "all"):
        arrays[1:1 + states] = [None] * states
    if missing in ("b_ih", "all"):
        arrays[-2] = None
    if missing in ("b_hh", "all"):
        arrays[-1] = None
    mask = _mask(cell, 4, 3, 5, "float64")
    out, grads, ran = _keydnn(rnn, monkeypatch, cell, arrays, False, mask, cudnn=True)
    _assert_cudnn_ran(rnn, ran, f"{cell} without {missing}")
    ref_out, ref_grads, _ = _keydnn(rnn, monkeypatch, cell, arrays, False, mask, cudnn=False)
    _close(out, ref_out, "float64", "output")
    for name, g, r in zip(GRAD_NAMES[states], grads, ref_grads, strict=True):
        assert (g is None) == (r is None), name
        if g is not None:
            _close(g, r, "float64", f"d{name}")


def _torch_layer(torch, layer, kind, dtype):
    """A torch.nn layer with ``layer``'s weights (transposed; GRU gate blocks z, r, n as r, z, n)."""
    cls = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    t = cls(layer.input_size, layer.hidden_size, num_layers=layer.num_layers, batch_first=layer.batch_first)
    t = t.to(device="cuda", dtype=getattr(torch, dtype))
    with torch.no_grad():
        for i, cell in enumerate(layer.cells):
            for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"),
                                 ("b_hh", "bias_hh")):
                a = torch.tensor(getattr(cell, ours).to_numpy(), device="cuda")
                a = a.t() if a.ndim == 2 else a
                getattr(t, f"{theirs}_l{i}").copy_(specs._rzn(a) if kind == "GRU" else a)
    return t


def _torch_param_grads(torch_layer, layer, kind):
    """PyTorch's parameter gradients in KeyDNN's layout and parameters() order."""
    by_name = {}
    for i in range(layer.num_layers):
        for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
            g = getattr(torch_layer, f"{theirs}_l{i}").grad
            g = specs._rzn(g) if kind == "GRU" else g
            by_name[(i, ours)] = (g.t() if g.ndim == 2 else g).cpu().numpy()
    out = []
    for i, cell in enumerate(layer.cells):
        for p in cell.parameters():
            name = next(n for n in ("W_ih", "W_hh", "b_ih", "b_hh") if getattr(cell, n) is p)
            out.append(by_name[(i, name)])
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers,batch_first", [(1, False), (2, True), (3, False)])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layers_match_torch(rnn, monkeypatch, kind, layers, batch_first, dtype):
    """Stacked layers with initial states, final-state gradients included, against torch.nn on CUDA."""
    torch = _torch_cuda()
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    cls, kw = {"RNN": (RNN, {}), "LSTM": (LSTM, {}), "GRU": (GRU, {"reset_after": True})}[kind]
    layer = cls(3, 6, num_layers=layers, batch_first=batch_first, dtype=dtype, **kw).to(DEV)
    tl = _torch_layer(torch, layer, kind, dtype)
    rng = np.random.default_rng(3)
    steps, batch = 5, 2
    x = rng.standard_normal((batch, steps, 3) if batch_first else (steps, batch, 3)).astype(dtype)
    h0 = rng.standard_normal((layers, batch, 6)).astype(dtype)
    c0 = rng.standard_normal((layers, batch, 6)).astype(dtype)
    m_seq = rng.standard_normal(x.shape[:2] + (6,)).astype(dtype)
    m_h, m_c = rng.standard_normal(h0.shape).astype(dtype), rng.standard_normal(c0.shape).astype(dtype)

    def state(a):
        return a if layers > 1 else a[0]
    xt = Tensor.from_numpy(x, device=DEV, requires_grad=True)
    ht = Tensor.from_numpy(state(h0), device=DEV, requires_grad=True)
    ct = Tensor.from_numpy(state(c0), device=DEV, requires_grad=True)
    seq, st = layer(xt, ht, ct) if kind == "LSTM" else layer(xt, ht)
    hT, cT = st if kind == "LSTM" else (st, None)
    loss = (seq * Tensor.from_numpy(m_seq, device=DEV)).sum() + (hT * Tensor.from_numpy(state(m_h), device=DEV)).sum()
    if cT is not None:
        loss = loss + (cT * Tensor.from_numpy(state(m_c), device=DEV)).sum()
    loss.backward()
    _assert_cudnn_ran(rnn, (rnn.last_kernel.get(f"{kind.lower()}_sequence_forward"),
                            rnn.last_kernel.get(f"{kind.lower()}_sequence_backward")), f"{kind} layer")

    tx = torch.tensor(x, device="cuda", requires_grad=True)
    th = torch.tensor(h0, device="cuda", requires_grad=True)
    tc = torch.tensor(c0, device="cuda", requires_grad=True)
    tseq, tst = tl(tx, (th, tc)) if kind == "LSTM" else tl(tx, th)
    thT, tcT = tst if kind == "LSTM" else (tst, None)
    tloss = (tseq * torch.tensor(m_seq, device="cuda")).sum() + (thT * torch.tensor(m_h, device="cuda")).sum()
    if tcT is not None:
        tloss = tloss + (tcT * torch.tensor(m_c, device="cuda")).sum()
    tloss.backward()
    _close(seq.to_numpy(), tseq.detach().cpu().numpy(), dtype, "sequence")
    _close(hT.to_numpy(), state(thT.detach().cpu().numpy()), dtype, "final h")
    if cT is not None:
        _close(cT.to_numpy(), state(tcT.detach().cpu().numpy()), dtype, "final c")
    _close(xt.grad.to_numpy(), tx.grad.cpu().numpy(), dtype, "dx")
    _close(ht.grad.to_numpy(), state(th.grad.cpu().numpy()), dtype, "dh0")
    if kind == "LSTM":
        _close(ct.grad.to_numpy(), state(tc.grad.cpu().numpy()), dtype, "dc0")
    params = list(layer.parameters())
    for i, (p, want) in enumerate(zip(params, _torch_param_grads(tl, layer, kind), strict=True)):
        _close(p.grad.to_numpy(), want, dtype, f"parameter {i} of {len(params)}")


def _bidirectional_run(model, x, h0, kind):
    xt = Tensor.from_numpy(x, device=DEV, requires_grad=True)
    ht = Tensor.from_numpy(h0, device=DEV, requires_grad=True)
    out = model(xt, (ht, ht) if kind == "LSTM" else ht)
    (out * out).sum().backward()
    return [out.to_numpy(), xt.grad.to_numpy(), ht.grad.to_numpy()] + [p.grad.to_numpy()
                                                                      for p in model.parameters()]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_bidirectional_stack_matches_fallback(rnn, monkeypatch, kind):
    """Bidirectional (each direction its own two-layer stack; the backward one on cuDNN with time flipped),
    batch_first, initial states: cuDNN path vs the KeyDNN CUDA path on the same weights, float64."""
    cls, kw = {"RNN": (RNN, {}), "LSTM": (LSTM, {}), "GRU": (GRU, {"reset_after": True})}[kind]
    model = Bidirectional(cls(3, 5, num_layers=2, batch_first=True, dtype="float64", **kw)).to(DEV)
    rng = np.random.default_rng(4)
    x, h0 = rng.standard_normal((4, 6, 3)), rng.standard_normal((2, 4, 5))
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("KEYDNN_CUDNN_RNN", flag)
        for p in model.parameters():
            p.grad = None
        results.append(_bidirectional_run(model, x, h0, kind))
        want = rnn.CUDNN if flag == "1" else rnn.FALLBACK
        assert rnn.last_kernel[f"{kind.lower()}_sequence_backward"] == want, rnn.fallbacks
    for i, (got, ref) in enumerate(zip(*results, strict=True)):
        _close(got, ref, "float64", f"output/gradient {i}")


def test_descriptor_cache_and_repeated_calls(rnn, monkeypatch):
    """Repeated calls reuse one plan per (cell, dtype, D, H) and one shape entry per (T, N); results repeat."""
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    layer = LSTM(4, 7, dtype="float32", return_state=False).to(DEV)
    rng = np.random.default_rng(5)
    x = Tensor.from_numpy(rng.standard_normal((6, 3, 4)).astype("float32"), device=DEV)
    first = layer(x).to_numpy()
    plans, shapes = len(rnn._plans), len(rnn._shapes)
    for _ in range(3):
        np.testing.assert_allclose(layer(x).to_numpy(), first, rtol=1e-6, atol=1e-7)
    assert (len(rnn._plans), len(rnn._shapes)) == (plans, shapes)
    layer(Tensor.from_numpy(rng.standard_normal((9, 3, 4)).astype("float32"), device=DEV))
    assert (len(rnn._plans), len(rnn._shapes)) == (plans, shapes + 1)
    assert rnn.last_kernel["lstm_sequence_forward"] == rnn.CUDNN, rnn.fallbacks


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_persistent_and_standard_algorithms_agree(rnn, monkeypatch, cell):
    """PERSIST_STATIC_SMALL_H (taken for small H) and STANDARD give the same outputs and gradients; with the
    workspace limit at 0 the persistent algorithm is not taken and STANDARD runs."""
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    layer_cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[cell]
    kwargs = {"reset_after": True} if cell == "gru" else {}
    layer = layer_cls(6, 16, dtype="float32", return_state=False, **kwargs).to(DEV)
    x_np = np.random.default_rng(11).standard_normal((40, 5, 6)).astype("float32")

    def run(algo: str, limit: str) -> tuple[int, list[np.ndarray]]:
        monkeypatch.setenv("KEYDNN_CUDNN_RNN_ALGO", algo)
        monkeypatch.setenv("KEYDNN_CUDNN_WORKSPACE_MB", limit)
        x = Tensor.from_numpy(x_np, device=DEV, requires_grad=True)
        for p in layer.parameters():
            p.grad = None
        out = layer(x)
        (out * out).sum().backward()
        assert rnn.last_kernel[f"{cell}_sequence_backward"] == rnn.CUDNN, rnn.fallbacks
        return rnn.last_algo[f"{cell}_sequence_forward"], [out.to_numpy(), x.grad.to_numpy()] + [
            p.grad.to_numpy() for p in layer.parameters()]

    from keydnn.infrastructure.backends.cuda import _cudnn_rnn

    algo, auto = run("auto", "1024")
    assert algo == _cudnn_rnn.RNN_ALGO_PERSIST_STATIC_SMALL_H, rnn.fallbacks
    algo, standard = run("standard", "1024")
    assert algo == _cudnn_rnn.RNN_ALGO_STANDARD
    algo, limited = run("auto", "0")
    assert algo == _cudnn_rnn.RNN_ALGO_STANDARD, rnn.fallbacks
    for a, b, c in zip(auto, standard, limited, strict=True):  # float32 sums in another order: a tolerance
        atol = 1e-5 * max(1.0, float(np.abs(b).max()))            # on the scale of each array (grads reach 60)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=atol)
        np.testing.assert_allclose(c, b, rtol=1e-4, atol=atol)


def test_fallbacks(rnn, monkeypatch):
    """The seed's GRU (reset_after=False) and KEYDNN_CUDNN_RNN=0 take the KeyDNN path, with its results."""
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    arrays = _arrays("gru", 3, 2, 3, 4, "float64")
    ts = [Tensor.from_numpy(a, device=DEV) for a in arrays]
    out = rec.gru_sequence(*ts, reset_after=False).to_numpy()
    assert rnn.last_kernel["gru_sequence_forward"] == rnn.FUSED  # the seed's form: gru_seed.cu, not cuDNN
    np.testing.assert_allclose(out, specs._gru_ref(*arrays, reset_after=False), rtol=1e-10, atol=1e-12)
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "0")
    rec.gru_sequence(*ts, reset_after=True)
    assert rnn.last_kernel["gru_sequence_forward"] == rnn.FALLBACK
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    rec.gru_sequence(*ts, reset_after=True)
    assert rnn.last_kernel["gru_sequence_forward"] == rnn.CUDNN, rnn.fallbacks


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("with_h0", [True, False])
def test_fused_seed_gru_matches_the_composite_loop(rnn, monkeypatch, dtype, case, with_h0):
    """The seed's GRU (reset_after=False) over the whole sequence in one library call (gru_seed.cu: two GEMMs
    and two fused kernels a step each way) against the composite loop of KeyDNN kernels: the output and every
    gradient, both directions, with and without h0."""
    steps, batch, features, hidden, reverse = case
    arrays = _arrays("gru", steps, batch, features, hidden, dtype, seed=4)
    if not with_h0:
        arrays[1] = None
    mask = _mask("gru", steps, batch, hidden, dtype, seed=5)
    results = []
    for fused in ("1", "0"):
        monkeypatch.setenv("KEYDNN_FUSED_GRU", fused)
        ts = [None if a is None else Tensor.from_numpy(a, device=DEV, requires_grad=True) for a in arrays]
        out = rec.gru_sequence(*ts, reverse=reverse, reset_after=False)
        (out * Tensor.from_numpy(mask, device=DEV)).sum().backward()
        want = rnn.FUSED if fused == "1" else rnn.FALLBACK
        assert rnn.last_kernel["gru_sequence_forward"] == want
        assert rnn.last_kernel["gru_sequence_backward"] == want
        results.append([out.to_numpy()] + [t.grad.to_numpy() for t in ts if t is not None])
    for got, ref in zip(*results, strict=True):
        _close(got, ref, dtype, "fused seed GRU vs composite")


def test_fused_seed_gru_layers_and_stacks(rnn, monkeypatch):
    """The layer (two layers, bidirectional, batch_first) on the fused path matches the same layer on the
    composite loop, and on the CPU."""
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    rng = np.random.default_rng(8)
    layer = Bidirectional(GRU(5, 7, num_layers=2, batch_first=True, dtype="float64"))
    x_np = rng.standard_normal((3, 6, 5))
    outs = []
    for device, fused in (("cuda:0", "1"), ("cuda:0", "0"), ("cpu", "1")):
        monkeypatch.setenv("KEYDNN_FUSED_GRU", fused)
        layer.to(device)
        for p in layer.parameters():
            p.grad = None
        x = Tensor.from_numpy(x_np, device=device, requires_grad=True)
        y = layer(x)
        (y * y).sum().backward()
        outs.append([y.to_numpy(), x.grad.to_numpy()] + [p.grad.to_numpy() for p in layer.parameters()])
        if device == "cuda:0" and fused == "1":
            assert rnn.last_kernel["gru_sequence_backward"] == rnn.FUSED
    for a, b, c in zip(*outs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-11)


def test_bad_input_still_raises_keydnn_errors(rnn, monkeypatch):
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = (Tensor.from_numpy(a, device=DEV)
                                         for a in _arrays("lstm", 3, 2, 3, 4, "float32"))
    with pytest.raises(ShapeError, match="W_ih must be"):
        rec.lstm_sequence(x, h0, c0, w_hh, w_hh, b_ih, b_hh)
    with pytest.raises(ShapeError, match="state must be"):
        rec.lstm_sequence(x, w_hh, c0, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(DTypeError, match="dtypes differ"):
        rec.lstm_sequence(x, h0, c0, w_ih, Tensor.from_numpy(w_hh.to_numpy().astype("float64"), device=DEV),
                          b_ih, b_hh)
    with pytest.raises(ShapeError):
        LSTM(3, 4).to(DEV)(Tensor.from_numpy(np.ones((2, 3), "float32"), device=DEV))


def test_trace_labels_cudnn_rnn(rnn, monkeypatch):
    """The parity report's "kernels" column says which implementation ran."""
    from keydnn.report.kernels import traced

    arrays = [Tensor.from_numpy(a, device=DEV) for a in _arrays("lstm", 3, 2, 3, 4, "float32")]
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "1")
    with traced(DEV) as trace:
        rec.lstm_sequence(*arrays)
    assert "cudnn-rnn:lstm_sequence_forward" in trace.labels(), (trace.labels(), rnn.fallbacks)
    monkeypatch.setenv("KEYDNN_CUDNN_RNN", "0")
    with traced(DEV) as trace:
        rec.lstm_sequence(*arrays)
    assert "cudnn-rnn" not in trace.labels() and "lstm_sequence_forward" in trace.labels()


ADV_HEADERS = ["/usr/include/x86_64-linux-gnu/cudnn_adv*.h", "/usr/include/cudnn_adv*.h",
               "/usr/local/cuda*/include/cudnn_adv*.h"]


def test_rnn_constants_match_the_header():
    """Every RNN enum value in _cudnn_rnn.py, by its header name, against the installed cudnn_adv.h."""
    from keydnn.infrastructure.backends.cuda import _cudnn_rnn
    from tests.cuda.test_cudnn_graph import header_enums

    paths = sorted(p for pattern in ADV_HEADERS for p in glob.glob(pattern))
    if not paths:
        pytest.skip("no cudnn_adv.h on this machine")
    text = "\n".join(Path(p).read_text(errors="replace") for p in paths)
    values = header_enums(text)
    for name, value in re.findall(r"#define\s+(CUDNN_RNN_PADDED_IO_\w+)\s+\(?(\d+)", text):
        values[name] = int(value)
    names = _cudnn_rnn.RNN_HEADER_NAMES
    wrong = {ours: (getattr(_cudnn_rnn, ours), values.get(theirs)) for ours, theirs in names.items()
             if values.get(theirs) != getattr(_cudnn_rnn, ours)}
    assert not wrong, f"ours vs cudnn_adv.h: {wrong}"
