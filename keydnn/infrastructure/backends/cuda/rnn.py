"""The whole-sequence recurrent kernels on CUDA through cuDNN's RNN API (cudnnRNNForward, BackwardData_v8,
BackwardWeights_v8): RNN (tanh), LSTM, and the GRU in its reset_after=True form (cuDNN's and PyTorch's).

One call per layer and direction: a layer of KeyDNN's is a unidirectional cuDNN RNN of one layer.
``reverse`` runs cuDNN on x flipped in time and flips the outputs back (Bidirectional's two directions have
their own weights and stacks, Keras-style, so they are two calls). Per call the weights are copied into a
weight space in cuDNN's layout (rnn_layout.py: per gate row-major (H, C), gates reordered for the GRU) and the
gradient weight space is copied back; the training forward's reserve space lives in ``saved`` until the
backward. Data is described as SEQ_MAJOR_PACKED with every length T (the layout cuDNN takes with padded I/O
disabled; its memory is the dense (T, N, D) array); operands that are strided or not 16-byte aligned (h0[i] of
a stack) are copied first. The algorithm is PERSIST_STATIC_SMALL_H where cuDNN takes it within the workspace
limit, else STANDARD (``algorithms``). Descriptors and weight layouts are cached per (device, cell, dtype,
math type, D, H, algorithm), temp-space sizes and the device array of sequence lengths per that plus (T, N).

float32 runs with CUDNN_FMA_MATH: CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor cores on Ampere and later
(as cuDNN's convolutions do), which would break parity with float64 references; blas.set_tf32(True)
switches to DEFAULT_MATH, as for convolutions. float64 uses DEFAULT_MATH (no reduced precision exists).

Anything else takes the kernels of backends/composite_rnn.py over this table (the loop of KeyDNN kernels and
cuBLAS): the seed's GRU (reset_after=False), other dtypes, operands on other devices or of other dtypes (so
the composite raises its usual errors), empty batches, a cuDNN without the RNN API, a configuration cuDNN
refuses at setup (recorded in ``fallbacks``), and KEYDNN_CUDNN_RNN=0. ``last_kernel`` says, per contract
kernel, which ran last: "cudnn-rnn" or "keydnn".
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from keydnn.domain.errors import DeviceNotSupportedError, NativeLibraryError
from keydnn.infrastructure.backends import composite_rnn

from . import _cudart, _cudnn, _cudnn_rnn, _lib, blas, storage
from .elementwise import copy_strided
from .rnn_layout import GATES, PARAMS, WeightLayout, lin_layer_ids
from .storage import CudaArray

CUDNN, FUSED, FALLBACK = "cudnn-rnn", "keydnn-fused", "keydnn"
SEQUENCE_KERNELS = tuple(f"{cell}_sequence_{way}" for cell in ("rnn", "lstm", "gru")
                         for way in ("forward", "backward"))
_DTYPES = {np.dtype(np.float32): _cudnn.DATA_FLOAT, np.dtype(np.float64): _cudnn.DATA_DOUBLE}
_MODES = {"rnn": _cudnn_rnn.RNN_TANH, "lstm": _cudnn_rnn.RNN_LSTM, "gru": _cudnn_rnn.RNN_GRU}

last_kernel: dict[str, str] = {}
last_algo: dict[str, int] = {}  # forward kernel -> the cudnnRNNAlgo_t its last cuDNN call ran
fallbacks: dict[tuple, str] = {}  # configuration -> why cuDNN did not take it


def _note(kernel: str, what: str) -> None:
    """Record which implementation ran (report/kernels.py wraps this to label its traces)."""
    last_kernel[kernel] = what


def fused_gru_enabled() -> bool:
    """KEYDNN_FUSED_GRU=0 keeps the seed's GRU on the composite loop (parity tests, benchmarks)."""
    return os.environ.get("KEYDNN_FUSED_GRU", "1") != "0"


def enabled() -> bool:
    """KEYDNN_CUDNN_RNN=0 forces the KeyDNN path (for parity tests and benchmarks); anything else allows cuDNN."""
    return os.environ.get("KEYDNN_CUDNN_RNN", "1") != "0"


@dataclass(frozen=True)
class _Plan:
    desc: int  # cudnnRNNDescriptor_t
    layout: WeightLayout
    space_bytes: int
    algo: int  # cudnnRNNAlgo_t


@dataclass(frozen=True)
class _Shape:
    x_desc: int
    y_desc: int
    h_desc: int
    seq_lengths: CudaArray  # int32 [N] on the device, every entry T (cudnnRNNForward's devSeqLengths)
    work_bytes: int
    reserve_bytes: int
    key: tuple  # (device, cell, dtype, math type, D, H, algorithm, T, N)


@dataclass
class _Saved:
    """What the cuDNN backward needs; arrays are in cuDNN's time order (flipped when ``reverse``)."""

    cell: str
    plan: _Plan
    shape: _Shape
    x: CudaArray
    hx: CudaArray | None
    cx: CudaArray | None
    y: CudaArray  # (T, N, H) or, for the LSTM, (T+1, N, H) with cy in the last row
    space: CudaArray
    reserve: CudaArray
    reverse: bool
    has_bih: bool
    has_bhh: bool


_plans: dict[tuple, _Plan | None] = {}
_shapes: dict[tuple, _Shape] = {}
_refused: set[tuple] = set()  # (configuration, algorithm, T, N) cuDNN refused, or whose workspace is over the limit


def _math_type(dtype: np.dtype) -> int:
    return _cudnn.FMA_MATH if dtype == np.float32 and not blas.tf32_enabled() else _cudnn.DEFAULT_MATH


def _weight_layout(op: str, h: int, desc: int, cell: str, code: int, dtype: np.dtype, input_size: int,
                   hidden: int, device: int) -> tuple[WeightLayout, int]:
    """Ask cuDNN where every gate's matrix and bias sit (on a scratch weight space) and check their sizes."""
    nbytes = _cudnn_rnn.rnn_weight_space_size(op, h, desc)
    item = dtype.itemsize
    if nbytes % item:
        raise NativeLibraryError(_cudnn.LIBRARY, op, f"weight space of {nbytes} bytes is not whole {dtype}s")
    space = storage.empty((nbytes // item,), dtype, device)
    offsets: list[tuple[int, ...]] = []
    for param in range(4):
        found = []
        want = (hidden * (input_size if param == 0 else hidden)) if param < 2 else hidden
        for lin in lin_layer_ids(cell, param):
            m_addr, m_dims, b_addr, b_dims = _cudnn_rnn.rnn_weight_params(op, h, desc, 0, nbytes, space.ptr, lin)
            addr, dims = (m_addr, m_dims) if param < 2 else (b_addr, b_dims)
            size = int(np.prod(dims)) if dims else 0
            if not addr or size != want or (addr - space.ptr) % item:
                raise NativeLibraryError(
                    _cudnn.LIBRARY, op, f"cudnnGetRNNWeightParams gave {PARAMS[param]} of linLayerID {lin} "
                    f"dims {dims} at byte {addr - space.ptr if addr else None}; expected {want} elements")
            found.append((addr - space.ptr) // item)
        offsets.append(tuple(found))
    return WeightLayout.from_offsets(cell, input_size, hidden, nbytes // item, tuple(offsets)), nbytes


def algorithms() -> tuple[int, ...]:
    """The cuDNN RNN algorithms to try, fastest first. PERSIST_STATIC_SMALL_H keeps the recurrent weights
    on chip for the whole sequence: on the H200 it took the LSTM(16 -> 32) forward + backward from 26 to 1.0
    us per step at T=512 and LSTM(64 -> 128) from 23 to 4.9 (reports/gpu/rnn_variants_h200.txt); cuDNN
    refuses it for hidden sizes it cannot hold, and its workspace grows with T * N, so it is taken only
    while that workspace fits KEYDNN_CUDNN_WORKSPACE_MB (the convolutions' limit). KEYDNN_CUDNN_RNN_ALGO=
    standard keeps to the STANDARD algorithm (a GEMM and a gate kernel per step)."""
    if os.environ.get("KEYDNN_CUDNN_RNN_ALGO", "auto").lower() == "standard":
        return (_cudnn_rnn.RNN_ALGO_STANDARD,)
    return (_cudnn_rnn.RNN_ALGO_PERSIST_STATIC_SMALL_H, _cudnn_rnn.RNN_ALGO_STANDARD)


def _workspace_limit() -> int:
    from .conv import _workspace_limit as limit

    return limit()


def _setup(op: str, cell: str, x: CudaArray, hidden: int) -> tuple[int, _Plan, _Shape] | None:
    """(handle, plan, shape) for this problem, or None (reason in ``fallbacks``) when cuDNN will not take it:
    the first of ``algorithms()`` that cuDNN accepts for this configuration and, unless it is STANDARD,
    whose workspace fits the limit."""
    dtype, device = x.dtype, x.device
    code, math_type = _DTYPES[dtype], _math_type(dtype)
    steps, batch, features = x.shape
    key = (device, cell, code, math_type, features, hidden)
    try:
        _cudart.set_device(device)
        h = _cudnn.handle(device)
    except (NativeLibraryError, DeviceNotSupportedError) as exc:
        fallbacks[key] = str(exc)
        return None
    for algo in algorithms():
        plan_key = key + (algo,)
        shape_key = plan_key + (steps, batch)
        if shape_key in _refused:
            continue
        try:
            plan = _plans.get(plan_key, False)
            if plan is False:
                _plans[plan_key] = None  # a failure below leaves the key refused
                desc = _cudnn_rnn.rnn_descriptor(op, h, _MODES[cell], code, math_type, features, hidden,
                                                 algo=algo)
                layout, nbytes = _weight_layout(op, h, desc, cell, code, dtype, features, hidden, device)
                plan = _plans[plan_key] = _Plan(desc, layout, nbytes, algo)
            if plan is None:
                continue
            shape = _shapes.get(shape_key)
            if shape is None:
                x_desc = _cudnn_rnn.rnn_data(op, code, steps, batch, features)
                y_desc = _cudnn_rnn.rnn_data(op, code, steps, batch, hidden)
                h_desc = _cudnn_rnn.tensor_nd(op, code, (1, batch, hidden))
                work, reserve = _cudnn_rnn.rnn_temp_space_sizes(op, h, plan.desc, _cudnn_rnn.FWD_MODE_TRAINING,
                                                                x_desc)
                lengths = np.full(batch, steps, np.int32)  # int32 on the device: raw bytes (CudaArrays hold int64)
                seq = storage.workspace(lengths.nbytes, device)
                _cudart.memcpy(seq.ptr, lengths.ctypes.data, lengths.nbytes, _cudart.MEMCPY_H2D)
                shape = _shapes[shape_key] = _Shape(x_desc, y_desc, h_desc, seq, work, reserve, shape_key)
            if algo != _cudnn_rnn.RNN_ALGO_STANDARD and shape.work_bytes > _workspace_limit():
                fallbacks[shape_key] = f"workspace {shape.work_bytes} bytes over the limit {_workspace_limit()}"
                continue  # (checked per call: the limit may change)
            return h, plan, shape
        except (NativeLibraryError, DeviceNotSupportedError) as exc:
            fallbacks[shape_key] = str(exc)
            _refused.add(shape_key)
    return None


def _usable(cell: str, x: Any, states: tuple, params: tuple) -> bool:
    """Whether the cuDNN path may take these operands (otherwise the composite runs and raises as usual)."""
    if not enabled() or type(x) is not CudaArray or x.dtype not in _DTYPES or x.ndim != 3 or 0 in x.shape:
        return False
    for a in (*states, *params):
        if a is not None and (type(a) is not CudaArray or a.device != x.device or a.dtype != x.dtype):
            return False
    return True


def _flip(a: CudaArray, rows: int) -> CudaArray:
    """The first ``rows`` entries of axis 0 in reverse order, as a view."""
    return a.view((rows,) + a.shape[1:], (-a.strides[0],) + a.strides[1:], a.offset + (rows - 1) * a.strides[0])


def _row(a: CudaArray, index: int) -> CudaArray:
    return a.view(a.shape[1:], a.strides[1:], a.offset + index * a.strides[0])


def _rows(a: CudaArray, rows: int) -> CudaArray:
    return a.view((rows,) + a.shape[1:], a.strides, a.offset)


def _ptr(a: CudaArray | None) -> int | None:
    return None if a is None else a.ptr


_ALIGN = 16  # bytes: what cuDNN's vectorised kernels may assume of a tensor's address


def _input(a: CudaArray | None) -> CudaArray | None:
    """``a`` as a cuDNN operand: contiguous and aligned (a copy where it is not, e.g. h0[i] of a stack)."""
    if a is None or (a.is_contiguous and a.ptr % _ALIGN == 0):
        return a
    out = storage.new(a.shape, a.dtype, a.device)
    copy_strided(out, a)
    return out


def _pack(plan: _Plan, params: tuple) -> CudaArray:
    """A weight space holding (w_ih, w_hh, b_ih, b_hh) in cuDNN's layout (missing biases are zeros)."""
    layout = plan.layout
    first = params[0]
    space = storage.empty((layout.elements,), first.dtype, first.device)
    if any(p is None for p in params) or layout.elements != layout.covered:  # (any padding stays defined)
        _cudart.memset(space.ptr, 0, plan.space_bytes)
    for param, a in enumerate(params):
        if a is None:
            continue
        for run in layout.runs[param]:
            copy_strided(space.view(*layout.space_view(param, run)),
                         a.view(*layout.param_view(param, run, a.strides, a.offset)))
    return space


def _unpack(plan: _Plan, space: CudaArray, wanted: tuple[bool, bool, bool, bool]) -> list[CudaArray | None]:
    """(dw_ih, dw_hh, db_ih, db_hh) in KeyDNN's layout from a gradient weight space; None where not wanted."""
    layout = plan.layout
    g, h = GATES[layout.cell], layout.hidden
    shapes = ((layout.input_size, g * h), (h, g * h), (g * h,), (g * h,))
    out: list[CudaArray | None] = []
    for param, shape in enumerate(shapes):
        if not wanted[param]:
            out.append(None)
            continue
        a = storage.empty(shape, space.dtype, space.device)
        for run in layout.runs[param]:
            copy_strided(a.view(*layout.param_view(param, run, a.strides, a.offset)),
                         space.view(*layout.space_view(param, run)))
        out.append(a)
    return out


def _forward(k: Any, cell: str, kernel: str, x: CudaArray, h0: Any, c0: Any, params: tuple, reverse: bool):
    """(out, saved) through cuDNN, or None when it does not take the problem."""
    op = kernel
    lstm = cell == "lstm"
    if not _usable(cell, x, (h0, c0), params):
        return None
    hidden = params[1].shape[0]
    setup = _setup(op, cell, x, hidden)
    if setup is None:
        return None
    h, plan, shape = setup
    steps, batch, _ = x.shape
    xc = _input(_flip(x, steps) if reverse else x)
    hx, cx = _input(h0), _input(c0)
    space = _pack(plan, params)
    y = storage.empty((steps + lstm, batch, hidden), x.dtype, x.device)
    cy = _row(y, steps) if lstm else None  # written in place unless that row's address is unaligned
    cy_out = cy if cy is None or cy.ptr % _ALIGN == 0 else storage.new(cy.shape, cy.dtype, cy.device)
    work = storage.workspace(shape.work_bytes, x.device)
    reserve = storage.workspace(shape.reserve_bytes, x.device)
    try:
        _cudnn_rnn.rnn_call(
            op, "cudnnRNNForward", h, plan.desc, _cudnn_rnn.FWD_MODE_TRAINING, shape.seq_lengths.ptr,
            shape.x_desc, xc.ptr, shape.y_desc, y.ptr,
            shape.h_desc, _ptr(hx), None,  # hy: the last h is y's row T-1
            shape.h_desc, _ptr(cx), _ptr(cy_out),
            plan.space_bytes, space.ptr, shape.work_bytes, work.ptr or None, shape.reserve_bytes,
            reserve.ptr or None)
    except NativeLibraryError as exc:
        if plan.algo == _cudnn_rnn.RNN_ALGO_STANDARD:
            raise
        # refused at run time rather than at setup: note it, and run this shape with the next algorithm
        _refused.add(shape.key)
        fallbacks[shape.key] = str(exc)
        return _forward(k, cell, kernel, x, h0, c0, params, reverse)
    if cy_out is not cy:
        copy_strided(cy, cy_out)
    if reverse:
        out = storage.empty(y.shape, y.dtype, y.device)
        copy_strided(_rows(out, steps), _flip(y, steps))
        if lstm:
            copy_strided(_row(out, steps), _row(y, steps))
    else:
        out = y
    saved = _Saved(cell, plan, shape, xc, hx, cx, y, space, reserve, reverse, params[2] is not None,
                   params[3] is not None)
    last_algo[kernel] = plan.algo
    _note(kernel, CUDNN)
    return out, saved


def _backward(kernel: str, saved: _Saved, g: CudaArray) -> tuple:
    """(dx, dh0[, dc0], dw_ih, dw_hh, db_ih, db_hh) through cuDNN."""
    op = kernel
    s, plan, shape = saved, saved.plan, saved.shape
    lstm = s.cell == "lstm"
    steps, batch, features = s.x.shape
    device, dtype = s.x.device, s.x.dtype
    _cudart.set_device(device)
    h = _cudnn.handle(device)
    # dy: the first T rows of g (the LSTM's last row is dc_T), in cuDNN's time order
    dy = _input(_flip(g, steps) if s.reverse else _rows(g, steps))
    dcy = _input(_row(g, steps)) if lstm else None
    dx = storage.empty((steps, batch, features), dtype, device)
    dhx = None if s.hx is None else storage.empty(s.hx.shape, dtype, device)
    dcx = None if s.cx is None else storage.empty(s.cx.shape, dtype, device)
    work = storage.workspace(shape.work_bytes, device)
    work_ptr, reserve_ptr = work.ptr or None, s.reserve.ptr or None
    _cudnn_rnn.rnn_call(
        op, "cudnnRNNBackwardData_v8", h, plan.desc, shape.seq_lengths.ptr,
        shape.y_desc, s.y.ptr, dy.ptr, shape.x_desc, dx.ptr,
        shape.h_desc, _ptr(s.hx), None, _ptr(dhx),  # dhy: all of dh arrives through dy
        shape.h_desc, _ptr(s.cx), _ptr(dcy), _ptr(dcx),
        plan.space_bytes, s.space.ptr, shape.work_bytes, work_ptr, shape.reserve_bytes, reserve_ptr)
    dspace = storage.empty((plan.layout.elements,), dtype, device)
    _cudart.memset(dspace.ptr, 0, plan.space_bytes)  # WGRAD_MODE_ADD accumulates into it
    _cudnn_rnn.rnn_call(
        op, "cudnnRNNBackwardWeights_v8", h, plan.desc, _cudnn_rnn.WGRAD_MODE_ADD, shape.seq_lengths.ptr,
        shape.x_desc, s.x.ptr, shape.h_desc, _ptr(s.hx), shape.y_desc, s.y.ptr,
        plan.space_bytes, dspace.ptr, shape.work_bytes, work_ptr, shape.reserve_bytes, reserve_ptr)
    dw_ih, dw_hh, db_ih, db_hh = _unpack(plan, dspace, (True, True, s.has_bih, s.has_bhh))
    if s.reverse:
        dx = storage.contiguous(_flip(dx, steps))
    _note(kernel, CUDNN)
    states = (dhx, dcx) if lstm else (dhx,)
    return (dx, *states, dw_ih, dw_hh, db_ih, db_hh)


# ---- the contract kernels (bound to a table by install) ---------------------------------------------------
def rnn_sequence_forward(k: Any, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                         reverse: bool) -> tuple[Any, Any]:
    done = _forward(k, "rnn", "rnn_sequence_forward", x, h0, None, (w_ih, w_hh, b_ih, b_hh), reverse)
    if done is not None:
        return done
    _note("rnn_sequence_forward", FALLBACK)
    return composite_rnn.rnn_sequence_forward(k, x, h0, w_ih, w_hh, b_ih, b_hh, reverse)


def rnn_sequence_backward(k: Any, saved: Any, g: Any) -> tuple:
    if type(saved) is _Saved:
        return _backward("rnn_sequence_backward", saved, g)
    _note("rnn_sequence_backward", FALLBACK)
    return composite_rnn.rnn_sequence_backward(k, saved, g)


def lstm_sequence_forward(k: Any, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                          reverse: bool) -> tuple[Any, Any]:
    done = _forward(k, "lstm", "lstm_sequence_forward", x, h0, c0, (w_ih, w_hh, b_ih, b_hh), reverse)
    if done is not None:
        return done
    _note("lstm_sequence_forward", FALLBACK)
    return composite_rnn.lstm_sequence_forward(k, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)


def lstm_sequence_backward(k: Any, saved: Any, g: Any) -> tuple:
    if type(saved) is _Saved:
        return _backward("lstm_sequence_backward", saved, g)
    _note("lstm_sequence_backward", FALLBACK)
    return composite_rnn.lstm_sequence_backward(k, saved, g)


@dataclass
class _SeedSaved:
    """What the fused seed-GRU backward needs (all contiguous, time order)."""

    x: CudaArray
    h0: CudaArray
    w_ih: CudaArray
    w: CudaArray  # W_hh[:, :2H] / 2
    w_n: CudaArray  # W_hh[:, 2H:]
    m: CudaArray
    out: CudaArray  # (T, N, H)
    zrs: CudaArray  # (T, N, 2H)
    ns: CudaArray  # (T, N, H)
    es: CudaArray  # (T, N, H): r * h_prev
    reverse: bool
    has_bih: bool
    has_bhh: bool


def _seed_gru_forward(k: Any, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                      reverse: bool) -> tuple[CudaArray, _SeedSaved] | None:
    """The seed's GRU over the whole sequence in one call of the library (gru_seed.cu), or None when the
    operands are not its to take (the composite then runs and raises as usual)."""
    if not fused_gru_enabled() or not _usable("gru", x, (h0,), (w_ih, w_hh, b_ih, b_hh)):
        return None
    op = "gru_sequence_forward"
    steps, batch, _ = x.shape
    hidden = w_hh.shape[0]
    if w_hh.ndim != 2 or w_hh.shape[1] != 3 * hidden or (h0 is not None and h0.shape != (batch, hidden)):
        return None
    dtype, device = x.dtype, x.device
    h0 = composite_rnn._zeros_like_state(k, x, hidden) if h0 is None else storage.contiguous(h0)
    m = composite_rnn._gate_scale(k, hidden, (True, True, False), dtype)
    w = k.ascontiguousarray(k.multiply(k.getitem(w_hh, (slice(None), slice(0, 2 * hidden))), 0.5))
    w_n = k.ascontiguousarray(k.getitem(w_hh, (slice(None), slice(2 * hidden, 3 * hidden))))
    gx = storage.contiguous(composite_rnn._project(k, x, w_ih, composite_rnn._bias_sum(k, b_ih, b_hh), m))
    out = storage.empty((steps, batch, hidden), dtype, device)
    zrs = storage.empty((steps, batch, 2 * hidden), dtype, device)
    ns, es = (storage.empty((steps, batch, hidden), dtype, device) for _ in range(2))
    gh, gn = storage.empty((batch, 2 * hidden), dtype, device), storage.empty((batch, hidden), dtype, device)
    handle, compute = blas.gemm_setup(device, dtype)
    _lib.check(_lib.lib.kd_gru_seed_forward(storage.DTYPE_CODES[dtype], handle, compute, gx.ptr, h0.ptr, w.ptr,
                                            w_n.ptr, steps, batch, hidden, int(bool(reverse)), out.ptr, zrs.ptr,
                                            ns.ptr, es.ptr, gh.ptr, gn.ptr), op)
    _note(op, FUSED)
    return out, _SeedSaved(x, h0, w_ih, w, w_n, m, out, zrs, ns, es, bool(reverse), b_ih is not None,
                           b_hh is not None)


def _seed_gru_backward(k: Any, s: _SeedSaved, g: CudaArray) -> tuple:
    op = "gru_sequence_backward"
    steps, batch, hidden = s.out.shape
    dtype, device = s.out.dtype, s.out.device
    g = storage.contiguous(g if g.dtype == dtype else k.astype(g, dtype))
    dgx = storage.empty((steps, batch, 3 * hidden), dtype, device)
    dh0, dz, drh, ca, cb = (storage.empty((batch, hidden), dtype, device) for _ in range(5))
    handle, compute = blas.gemm_setup(device, dtype)
    _lib.check(_lib.lib.kd_gru_seed_backward(storage.DTYPE_CODES[dtype], handle, compute, g.ptr, s.h0.ptr,
                                             s.out.ptr, s.zrs.ptr, s.ns.ptr, s.w.ptr, s.w_n.ptr, steps, batch,
                                             hidden, int(s.reverse), dgx.ptr, dh0.ptr, dz.ptr, drh.ptr, ca.ptr,
                                             cb.ptr), op)
    dx, dw_ih, db, dw_hh = composite_rnn.gru_seed_weight_grads(k, s.x, s.h0, s.w_ih, s.m, s.out, dgx, s.es,
                                                               s.reverse)
    _note(op, FUSED)
    return dx, dh0, dw_ih, dw_hh, db if s.has_bih else None, db if s.has_bhh else None


def gru_sequence_forward(k: Any, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, reverse: bool,
                         reset_after: bool) -> tuple[Any, Any]:
    if reset_after:  # cuDNN's GRU is this form; the seed's reset-before form has no cuDNN counterpart
        done = _forward(k, "gru", "gru_sequence_forward", x, h0, None, (w_ih, w_hh, b_ih, b_hh), reverse)
        if done is not None:
            return done
    else:
        fused = _seed_gru_forward(k, x, h0, w_ih, w_hh, b_ih, b_hh, reverse)
        if fused is not None:
            return fused
    _note("gru_sequence_forward", FALLBACK)
    return composite_rnn.gru_sequence_forward(k, x, h0, w_ih, w_hh, b_ih, b_hh, reverse, reset_after)


def gru_sequence_backward(k: Any, saved: Any, g: Any) -> tuple:
    if type(saved) is _Saved:
        return _backward("gru_sequence_backward", saved, g)
    if type(saved) is _SeedSaved:
        return _seed_gru_backward(k, saved, g)
    _note("gru_sequence_backward", FALLBACK)
    return composite_rnn.gru_sequence_backward(k, saved, g)


def install(table: Any) -> Any:
    """Replace the table's composite sequence kernels by these (which fall back to the composite)."""
    for name in SEQUENCE_KERNELS:
        setattr(table, name, functools.partial(globals()[name], table))
    return table
