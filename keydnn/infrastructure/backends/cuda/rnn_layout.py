"""Where KeyDNN's recurrent weights sit in a cuDNN RNN weight space: pure index arithmetic, no device.

KeyDNN keeps ``W_ih`` (D, G*H), ``W_hh`` (H, G*H) and biases (G*H,), gate column blocks LSTM i, f, g, o and
GRU z, r, n. cuDNN keeps one row-major (H, D) or (H, H) matrix and one (H,) bias per gate ("linear layer"),
ids 0..G-1 for the input part and G..2G-1 for the recurrent part, gates LSTM i, f, g(c'), o and GRU r, z, n;
``cudnnGetRNNWeightParams`` says where each one starts. cuDNN's gate q of a matrix is therefore the transpose
of KeyDNN's column block ``SOURCES[cell][q]``.

Copies are planned as runs: consecutive cuDNN gates whose regions follow each other in the weight space and
whose KeyDNN blocks step by +1 or -1 move in one strided copy (an LSTM matrix is one run, a GRU matrix two:
r, z from blocks 1, 0, then n). Views are (shape, element strides, element offset) triples, applied by
cuda/rnn.py to CudaArrays and by the CPU tests to NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# cuDNN gate q <- KeyDNN column block SOURCES[cell][q]
SOURCES = {"rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}
PARAMS = ("w_ih", "w_hh", "b_ih", "b_hh")
View = tuple[tuple[int, ...], tuple[int, ...], int]


@dataclass(frozen=True)
class Run:
    gate: int  # first cuDNN gate
    count: int
    block: int  # KeyDNN column block of the first gate
    step: int  # +1 or -1: the block of gate ``gate + i`` is ``block + i * step``
    offset: int  # element offset of the first gate's region in the weight space


def lin_layer_ids(cell: str, param: int) -> range:
    """cuDNN linLayerIDs of one parameter's gates: input matrix/bias 0..G-1, recurrent G..2G-1."""
    g = GATES[cell]
    return range(g) if param in (0, 2) else range(g, 2 * g)


def plan_runs(offsets: tuple[int, ...], sources: tuple[int, ...], region: int) -> tuple[Run, ...]:
    """Group gates (cuDNN order, element offsets of their regions of ``region`` elements) into runs."""
    runs: list[Run] = []
    q = 0
    while q < len(offsets):
        n, step = 1, 1
        if q + 1 < len(offsets) and offsets[q + 1] == offsets[q] + region and abs(sources[q + 1] - sources[q]) == 1:
            step = sources[q + 1] - sources[q]
            while (q + n < len(offsets) and offsets[q + n] == offsets[q + n - 1] + region
                   and sources[q + n] - sources[q + n - 1] == step):
                n += 1
        runs.append(Run(q, n, sources[q], step, offsets[q]))
        q += n
    return tuple(runs)


@dataclass(frozen=True)
class WeightLayout:
    """One layer's weight space: its size and, per KeyDNN parameter, the runs its gates move in."""

    cell: str
    input_size: int
    hidden: int
    elements: int  # of the weight space, in the data type
    runs: tuple[tuple[Run, ...], ...]  # per PARAMS entry

    @classmethod
    def from_offsets(cls, cell: str, input_size: int, hidden: int, elements: int,
                     offsets: tuple[tuple[int, ...], ...]) -> WeightLayout:
        """``offsets[p][q]``: element offset of cuDNN gate q of parameter p (PARAMS order)."""
        sources = SOURCES[cell]
        regions = (hidden * input_size, hidden * hidden, hidden, hidden)
        return cls(cell, input_size, hidden, elements,
                   tuple(plan_runs(tuple(offsets[p]), sources, regions[p]) for p in range(4)))

    @property
    def covered(self) -> int:
        """Elements the four parameters fill (the weight space may be larger, if cuDNN pads)."""
        g, h = GATES[self.cell], self.hidden
        return g * h * (self.input_size + h + 2)

    def columns(self, param: int) -> int:
        """The KeyDNN matrix's rows (D or H), which are the cuDNN per-gate matrix's columns."""
        return self.input_size if param == 0 else self.hidden

    def space_view(self, param: int, run: Run) -> View:
        """The run's gates in the weight space: (count, H, C) row-major per gate, or (count, H) biases."""
        h = self.hidden
        if param >= 2:
            return (run.count, h), (h, 1), run.offset
        c = self.columns(param)
        return (run.count, h, c), (h * c, c, 1), run.offset

    def param_view(self, param: int, run: Run, strides: tuple[int, ...], offset: int) -> View:
        """The same elements in the KeyDNN parameter (any strides, ``offset`` its own): its column blocks
        ``run.block + i * run.step``, each transposed to (H, C)."""
        h = self.hidden
        if param >= 2:
            (s,) = strides
            return (run.count, h), (run.step * h * s, s), offset + run.block * h * s
        s0, s1 = strides
        return (run.count, h, self.columns(param)), (run.step * h * s1, s1, s0), offset + run.block * h * s1


def contiguous_offsets(cell: str, input_size: int, hidden: int) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """(elements, offsets) of the layout cuDNN's STANDARD algorithm uses for one unidirectional layer (every
    input matrix, every recurrent matrix, every input bias, every recurrent bias, gates in cuDNN order):
    for tests; the kernels always ask cudnnGetRNNWeightParams."""
    g = GATES[cell]
    sizes = (hidden * input_size, hidden * hidden, hidden, hidden)
    offsets, at = [], 0
    for size in sizes:
        offsets.append(tuple(at + q * size for q in range(g)))
        at += g * size
    return at, tuple(offsets)


# ---- NumPy mirrors (the CPU tests check the views with these) --------------------------------------------
def _np_view(a: np.ndarray, view: View) -> np.ndarray:
    base = a.reshape(-1) if a.flags.c_contiguous else None
    if base is None:
        raise ValueError("NumPy mirror views need C-contiguous arrays")
    shape, strides, offset = view
    item = a.itemsize
    return np.lib.stride_tricks.as_strided(base[offset:], shape, tuple(s * item for s in strides))


def pack_numpy(layout: WeightLayout, params: tuple[np.ndarray | None, ...]) -> np.ndarray:
    """The weight space of (w_ih, w_hh, b_ih, b_hh) as the CUDA kernel packs it (a missing bias is zeros)."""
    dtype = next(p.dtype for p in params if p is not None)
    space = np.zeros(layout.elements, dtype)
    for param, a in enumerate(params):
        if a is None:
            continue
        a = np.ascontiguousarray(a)
        for run in layout.runs[param]:
            src = _np_view(a, layout.param_view(param, run, tuple(s // a.itemsize for s in a.strides), 0))
            _np_view(space, layout.space_view(param, run))[...] = src
    return space


def unpack_numpy(layout: WeightLayout, space: np.ndarray) -> tuple[np.ndarray, ...]:
    """(dw_ih, dw_hh, db_ih, db_hh) in KeyDNN's layout from a (gradient) weight space."""
    g, h = GATES[layout.cell], layout.hidden
    shapes = ((layout.input_size, g * h), (h, g * h), (g * h,), (g * h,))
    out = []
    for param, shape in enumerate(shapes):
        a = np.empty(shape, space.dtype)
        for run in layout.runs[param]:
            dst = _np_view(a, layout.param_view(param, run, tuple(s // a.itemsize for s in a.strides), 0))
            dst[...] = _np_view(space, layout.space_view(param, run))
        out.append(a)
    return tuple(out)
