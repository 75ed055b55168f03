"""The cuDNN RNN weight-space mapping (backends/cuda/rnn_layout.py) on the CPU: the copy runs it plans, the
views it gives checked against explicit per-gate slicing, and cuDNN's cell formulas evaluated on a packed
weight space against KeyDNN's float64 references (so the gate order and the bias split are right before a
GPU ever runs them)."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.infrastructure.backends.cuda import rnn_layout as rl
from keydnn.infrastructure.op_specs.recurrent import _gru_ref, _lstm_ref, _rnn_ref

CELLS = ("rnn", "lstm", "gru")


def _params(cell, features, hidden, rng):
    g = rl.GATES[cell]
    return (rng.standard_normal((features, g * hidden)), rng.standard_normal((hidden, g * hidden)),
            rng.standard_normal(g * hidden), rng.standard_normal(g * hidden))


def _reference_space(cell, features, hidden, elements, offsets, params):
    """cuDNN's weight space by explicit slicing: gate q of a matrix is KeyDNN's block SOURCES[q], transposed."""
    space = np.zeros(elements)
    for p, a in enumerate(params):
        if a is None:
            continue
        for q, b in enumerate(rl.SOURCES[cell]):
            block = a[..., b * hidden:(b + 1) * hidden]
            flat = block.T.ravel() if a.ndim == 2 else block
            space[offsets[p][q]:offsets[p][q] + flat.size] = flat
    return space


def _shuffled_offsets(cell, features, hidden):
    """Every gate region in its own place, in reverse order with gaps: no two gates adjacent."""
    g = rl.GATES[cell]
    sizes = (hidden * features, hidden * hidden, hidden, hidden)
    regions = [(p, q) for p in range(4) for q in range(g)][::-1]
    offsets = [[0] * g for _ in range(4)]
    at = 0
    for p, q in regions:
        offsets[p][q] = at
        at += sizes[p] + 3
    return at, tuple(tuple(o) for o in offsets)


def test_runs_of_the_standard_layout():
    """An LSTM or RNN parameter moves in one copy; a GRU's in two (r, z from KeyDNN blocks 1, 0; then n)."""
    for cell, expect in (("rnn", 1), ("lstm", 1), ("gru", 2)):
        elements, offsets = rl.contiguous_offsets(cell, 5, 4)
        layout = rl.WeightLayout.from_offsets(cell, 5, 4, elements, offsets)
        assert [len(r) for r in layout.runs] == [expect] * 4, cell
        assert layout.covered == elements
    gru = rl.WeightLayout.from_offsets("gru", 5, 4, *rl.contiguous_offsets("gru", 5, 4))
    first, second = gru.runs[0]
    assert (first.gate, first.count, first.block, first.step) == (0, 2, 1, -1)
    assert (second.gate, second.count, second.block, second.step) == (2, 1, 2, 1)


def test_runs_split_where_regions_are_not_adjacent():
    elements, offsets = _shuffled_offsets("lstm", 3, 2)
    layout = rl.WeightLayout.from_offsets("lstm", 3, 2, elements, offsets)
    assert all(len(r) == 4 and all(run.count == 1 for run in r) for r in layout.runs)
    assert rl.plan_runs((0, 10, 20, 40), (0, 1, 2, 3), 10) == (rl.Run(0, 3, 0, 1, 0), rl.Run(3, 1, 3, 1, 40))
    assert rl.plan_runs((0, 10), (0, 2), 10) == (rl.Run(0, 1, 0, 1, 0), rl.Run(1, 1, 2, 1, 10))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shuffled", [False, True])
def test_pack_and_unpack_match_explicit_slicing(cell, shuffled):
    rng = np.random.default_rng(0)
    features, hidden = 3, 4
    elements, offsets = (_shuffled_offsets if shuffled else rl.contiguous_offsets)(cell, features, hidden)
    layout = rl.WeightLayout.from_offsets(cell, features, hidden, elements, offsets)
    params = _params(cell, features, hidden, rng)
    space = rl.pack_numpy(layout, params)
    np.testing.assert_array_equal(space, _reference_space(cell, features, hidden, elements, offsets, params))
    for got, want in zip(rl.unpack_numpy(layout, space), params, strict=True):
        np.testing.assert_array_equal(got, want)
    no_bias = params[:2] + (None, params[3])
    np.testing.assert_array_equal(rl.pack_numpy(layout, no_bias),
                                  _reference_space(cell, features, hidden, elements, offsets, no_bias))


def test_param_view_follows_any_strides():
    """A transposed (Fortran-ordered) W_ih reads through its own strides, as a CudaArray view would."""
    rng = np.random.default_rng(1)
    cell, features, hidden = "gru", 3, 2
    layout = rl.WeightLayout.from_offsets(cell, features, hidden, *rl.contiguous_offsets(cell, features, hidden))
    w = rng.standard_normal((features, 3 * hidden))
    buffer = np.asfortranarray(w).ravel(order="K")  # element (d, c) at d + c * features
    for run in layout.runs[0]:
        shape, strides, offset = layout.param_view(0, run, (1, features), 0)
        got = np.lib.stride_tricks.as_strided(buffer[offset:], shape, tuple(s * 8 for s in strides))
        for i in range(run.count):
            b = run.block + i * run.step
            np.testing.assert_array_equal(got[i], w[:, b * hidden:(b + 1) * hidden].T)


def _cudnn_cell(cell, space, layout, x, h0, c0):
    """cuDNN's formulas (cudnn_adv.h; gates by linLayerID) on a packed weight space, forward in time."""
    g, hidden = rl.GATES[cell], layout.hidden
    elements, offsets = rl.contiguous_offsets(cell, layout.input_size, hidden)
    assert elements == layout.elements

    def mat(p, q):
        rows = layout.input_size if p == 0 else hidden
        return space[offsets[p][q]:offsets[p][q] + hidden * rows].reshape(hidden, rows)

    def bias(p, q):
        return space[offsets[p][q]:offsets[p][q] + hidden]

    def sig(v):
        return 1 / (1 + np.exp(-v))

    h, c, hs = h0, c0, []
    for xt in x:
        wx = [xt @ mat(0, q).T + bias(2, q) for q in range(g)]
        rh = [h @ mat(1, q).T + bias(3, q) for q in range(g)]
        if cell == "rnn":
            h = np.tanh(wx[0] + rh[0])
        elif cell == "lstm":  # i, f, c', o
            i, f, o = sig(wx[0] + rh[0]), sig(wx[1] + rh[1]), sig(wx[3] + rh[3])
            c = f * c + i * np.tanh(wx[2] + rh[2])
            h = o * np.tanh(c)
        else:  # r, z, h': h' = tanh(W x + b_W + r (R h + b_R)), h = (1 - z) h' + z h
            r, z = sig(wx[0] + rh[0]), sig(wx[1] + rh[1])
            cand = np.tanh(wx[2] + r * rh[2])
            h = (1 - z) * cand + z * h
        hs.append(h)
    out = np.stack(hs)
    return np.concatenate([out, c[None]]) if cell == "lstm" else out


@pytest.mark.parametrize("cell", CELLS)
def test_cudnn_formulas_on_the_packed_space_match_keydnn(cell):
    """KeyDNN's weights packed for cuDNN give, under cuDNN's cell formulas, KeyDNN's reference outputs."""
    rng = np.random.default_rng(2)
    features, hidden, steps, batch = 3, 4, 5, 2
    layout = rl.WeightLayout.from_offsets(cell, features, hidden, *rl.contiguous_offsets(cell, features, hidden))
    params = _params(cell, features, hidden, rng)
    params = tuple(p * 0.5 for p in params)
    x = rng.standard_normal((steps, batch, features))
    h0, c0 = rng.standard_normal((batch, hidden)), rng.standard_normal((batch, hidden))
    got = _cudnn_cell(cell, rl.pack_numpy(layout, params), layout, x, h0, c0)
    if cell == "rnn":
        want = _rnn_ref(x, h0, *params)
    elif cell == "lstm":
        want = _lstm_ref(x, h0, c0, *params)
    else:
        want = _gru_ref(x, h0, *params, reset_after=True)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_lin_layer_ids():
    assert list(rl.lin_layer_ids("lstm", 0)) == [0, 1, 2, 3] == list(rl.lin_layer_ids("lstm", 2))
    assert list(rl.lin_layer_ids("lstm", 1)) == [4, 5, 6, 7] == list(rl.lin_layer_ids("lstm", 3))
    assert list(rl.lin_layer_ids("gru", 1)) == [3, 4, 5]
    assert list(rl.lin_layer_ids("rnn", 3)) == [1]


def test_kernels_fall_back_to_the_composite_for_other_arrays():
    """The cuDNN kernels bound to a table whose arrays are not CudaArrays run the composite kernels, unchanged,
    and say so in ``last_kernel`` (the same dispatch that KEYDNN_CUDNN_RNN=0 takes on CUDA)."""
    import functools

    from keydnn.infrastructure.backends import composite_rnn, numpy_table
    from keydnn.infrastructure.backends.cuda import rnn

    k = numpy_table()
    rng = np.random.default_rng(3)
    x, h0, c0 = rng.standard_normal((3, 2, 4)), rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    w_ih, w_hh, b_ih, b_hh = _params("lstm", 4, 5, rng)
    fwd = functools.partial(rnn.lstm_sequence_forward, k)
    out, saved = fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh, True)
    want, want_saved = composite_rnn.lstm_sequence_forward(k, x, h0, c0, w_ih, w_hh, b_ih, b_hh, True)
    np.testing.assert_array_equal(out, want)
    assert rnn.last_kernel["lstm_sequence_forward"] == rnn.FALLBACK
    g = rng.standard_normal(out.shape)
    for got, ref in zip(rnn.lstm_sequence_backward(k, saved, g),
                        composite_rnn.lstm_sequence_backward(k, want_saved, g), strict=True):
        np.testing.assert_array_equal(got, ref)
    assert rnn.last_kernel["lstm_sequence_backward"] == rnn.FALLBACK
    gx = rng.standard_normal((3, 2, 4))
    w3 = _params("gru", 4, 5, rng)
    out, _ = rnn.gru_sequence_forward(k, gx, h0, *w3, False, True)
    np.testing.assert_allclose(out, _gru_ref(gx, h0, *w3, reset_after=True), rtol=1e-12)
    assert rnn.last_kernel["gru_sequence_forward"] == rnn.FALLBACK


def test_install_replaces_every_sequence_kernel():
    from types import SimpleNamespace

    from keydnn.infrastructure.backends.cuda import rnn

    table = rnn.install(SimpleNamespace())
    for name in rnn.SEQUENCE_KERNELS:
        fn = getattr(table, name)
        assert fn.func is getattr(rnn, name) and fn.args == (table,)
