"""cuDNN 2-D convolution kernels on CudaArray (NCHW): forward, gradient of the input, gradient of the weight.

Each (direction, shapes, dtype, params, math, alignment) gets a plan once, cached for the process. By default
(KEYDNN_CUDNN_GRAPH=auto) the candidates are the execution plans cuDNN's graph API offers and the legacy
algorithm cudnnFind*AlgorithmEx picks (a legacy call costs cuDNN 9 about twice the host time of a graph-API
one, but its kernel set differs); each is timed over repeats, host time included, and the fastest kept.
KEYDNN_CUDNN_GRAPH=1 takes graph plans only (legacy where the graph API refuses the problem, recorded in
``graph_fallbacks``), =0 legacy only (cuDNN's heuristics instead of Find when KEYDNN_CUDNN_FIND=0).
Workspace comes from the caching allocator. float32 uses no TF32 unless blas.set_tf32(True).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from keydnn.domain.errors import DeviceMismatchError, DTypeError, NativeLibraryError, ShapeError

from ..numpy.conv import check_grad_shape, conv2d_output_hw
from . import _cudart, _cudnn, blas, elementwise, storage
from .storage import CudaArray

_DTYPES = {np.dtype(np.float32): _cudnn.DATA_FLOAT, np.dtype(np.float64): _cudnn.DATA_DOUBLE}
Pair = tuple[int, int]


@dataclass(frozen=True)
class _Plan:
    descs: tuple[int, int, int, int]  # (a, b, conv, c) in the direction's cuDNN argument order
    algo: int
    workspace_bytes: int


@dataclass(frozen=True)
class _GraphPlan:
    plan: int  # a finalized cudnnBackend execution plan; it runs on (x, w, y) pointers
    workspace_bytes: int
    engine: int  # cuDNN's global engine index, for reports


# Find*Ex times each algorithm once, cold; those within this factor of its best are re-timed over repeats.
_RETIME_WITHIN, _RETIME_REPEATS = 1.3, 3
_GRAPH_MODES = ("auto", "1", "0")
_plans: dict[tuple, _Plan | _GraphPlan] = {}
graph_fallbacks: dict[tuple, str] = {}  # configuration -> why the graph API did not take it
# The legacy calls' operand order, as indices into (x, w, y): forward (x, w, y), data (w, dy, dx),
# filter (x, dy, dw).
_LEGACY_ORDER = {"forward": (0, 1, 2), "backward_data": (1, 2, 0), "backward_filter": (0, 2, 1)}
_bias_descs: dict[tuple[int, int], int] = {}  # (dtype, channels) -> (1, C, 1, 1) descriptor


def _params(stride: Pair, padding: Pair, dilation: Pair, groups: int) -> tuple[Pair, Pair, Pair, int]:
    """Hashable ints, after conv2d_output_hw has validated them."""
    return (int(stride[0]), int(stride[1])), (int(padding[0]), int(padding[1])), \
        (int(dilation[0]), int(dilation[1])), int(groups)


def _workspace_limit() -> int:
    return int(os.environ.get("KEYDNN_CUDNN_WORKSPACE_MB", "1024")) * 2**20


def _workspace(nbytes: int, device: int) -> storage.CudaArray:
    # Raw bytes from the caching allocator, back in the cache when dropped after the call (safe: all work
    # is on the default stream).
    return storage.workspace(nbytes, device)


def _graph_mode() -> str:
    """KEYDNN_CUDNN_GRAPH: "auto" (race graph plans and the legacy pick), "1" (graph plans), "0" (legacy)."""
    mode = os.environ.get("KEYDNN_CUDNN_GRAPH", "auto")
    if mode not in _GRAPH_MODES:
        raise ValueError(f"KEYDNN_CUDNN_GRAPH must be one of {_GRAPH_MODES}, got {mode!r}")
    return mode if mode == "0" or _cudnn.has_graph_api() else "0"


def describe(plan: _Plan | _GraphPlan) -> str:
    """One line for reports: which API and kernel a plan runs, and its workspace."""
    what = f"graph engine {plan.engine}" if type(plan) is _GraphPlan else f"legacy algo {plan.algo}"
    return f"{what} ({plan.workspace_bytes / 2**20:.0f} MiB workspace)"


def _alignment(ptrs: tuple[int, int, int]) -> int:
    """The largest power of two up to 16 dividing every pointer: a plan is valid for this alignment or more."""
    align = 16
    for p in ptrs:
        while p % align:
            align //= 2
    return align


def _tensor_cores(dtype: np.dtype) -> bool:
    """Whether graph-API engines may use tensor cores: always for float64 (exact), for float32 only with TF32."""
    return dtype != np.float32 or blas.tf32_enabled()


def _math_type(dtype: np.dtype) -> int:
    return _cudnn.DEFAULT_MATH if blas.tf32_enabled() and dtype == np.float32 else _cudnn.FMA_MATH


def _fastest(candidates: list[tuple[int, int, int]], launch) -> tuple[int, int, int]:
    """Of the (algo, bytes, math) Find*Ex timed near its best (one cold run each), the fastest on repeats."""
    best, best_ms = candidates[0], float("inf")
    for cand in candidates:
        launch(cand)  # warm: the first launch of a kernel pays for loading it
        start, end = _cudart.Event(), _cudart.Event()
        start.record()
        for _ in range(_RETIME_REPEATS):
            launch(cand)
        end.record()
        ms = start.elapsed_ms(end)
        if ms < best_ms:
            best, best_ms = cand, ms
    return best


def _choose(op: str, direction: str, h: int, code: int, descs: tuple[int, int, int, int],
            ptrs: tuple[int, int, int], device: int) -> tuple[int, int]:
    """(algorithm, workspace bytes): the fastest measured one, or cuDNN's first guess within the limit.

    Sets the convolution descriptor's math type to the one the chosen algorithm was measured with.
    """
    limit = _workspace_limit()
    sizes = {}
    for algo in _cudnn.heuristic_algorithms(op, direction, h, descs):
        size = _cudnn.workspace_size(op, direction, h, descs, algo)
        if size is not None and size <= limit:
            sizes[algo] = size
    if os.environ.get("KEYDNN_CUDNN_FIND", "1") != "0":
        nbytes = max(sizes.values(), default=0)
        ws = _workspace(nbytes, device)
        timed = _cudnn.find_algorithms(op, direction, h, descs, ptrs, ws.ptr, nbytes)
        close = [(algo, size, math) for algo, ms, size, math in timed
                 if ms <= timed[0][1] * _RETIME_WITHIN][:3]
        if close:
            def launch(cand: tuple[int, int, int]) -> None:
                _cudnn.call(op, "cudnnSetConvolutionMathType", descs[2], cand[2])
                _cudnn.convolve(op, direction, h, code, descs, ptrs, cand[0], ws.ptr, cand[1])
            best = close[0] if len(close) == 1 else _fastest(close, launch)
            _cudnn.call(op, "cudnnSetConvolutionMathType", descs[2], best[2])
            return best[0], best[1]
    if not sizes:
        raise ShapeError(op, "cuDNN offers no algorithm for this convolution")
    best = next(iter(sizes))
    return best, sizes[best]


def _graph_plans(op: str, direction: str, h: int, code: int, shapes: tuple[tuple, tuple, tuple],
                 params: tuple[Pair, Pair, Pair, int], ptrs: tuple[int, int, int],
                 tensor_cores: bool) -> list[_GraphPlan]:
    """The graph API's plans for one configuration that fit the workspace limit."""
    stride, padding, dilation, _ = params
    limit, plans = _workspace_limit(), []
    for plan, nbytes, engine in _cudnn.convolution_plans(op, direction, h, code, shapes, padding, stride,
                                                         dilation, _alignment(ptrs), tensor_cores):
        if nbytes <= limit:
            plans.append(_GraphPlan(plan, nbytes, engine))
        else:
            _cudnn.destroy(plan)
    return plans


def _legacy_plan(op: str, direction: str, h: int, code: int, shapes: tuple[tuple, tuple, tuple],
                 params: tuple[Pair, Pair, Pair, int], math_type: int, ptrs: tuple[int, int, int],
                 device: int) -> _Plan:
    """Legacy descriptors and the algorithm _choose measures fastest."""
    stride, padding, dilation, groups = params
    x_shape, w_shape, y_shape = shapes
    xd = _cudnn.tensor_4d(op, code, x_shape)
    wd = _cudnn.filter_4d(op, code, w_shape)
    yd = _cudnn.tensor_4d(op, code, y_shape)
    cd = _cudnn.convolution_2d(op, code, padding, stride, dilation, groups, math_type)
    descs = {"forward": (xd, wd, cd, yd), "backward_data": (wd, yd, cd, xd),
             "backward_filter": (xd, yd, cd, wd)}[direction]
    legacy_ptrs = tuple(ptrs[i] for i in _LEGACY_ORDER[direction])
    algo, nbytes = _choose(op, direction, h, code, descs, legacy_ptrs, device)
    return _Plan(descs, algo, nbytes)


def _make_plan(op: str, direction: str, h: int, code: int, shapes: tuple[tuple, tuple, tuple], dtype: np.dtype,
               params: tuple[Pair, Pair, Pair, int], math_type: int, ptrs: tuple[int, int, int], device: int,
               mode: str, key: tuple) -> _Plan | _GraphPlan:
    """The plan the mode asks for: the fastest over repeats among the candidates it admits."""
    legacy = None
    if mode != "1":
        try:
            legacy = _legacy_plan(op, direction, h, code, shapes, params, math_type, ptrs, device)
        except (NativeLibraryError, ShapeError):
            if mode == "0":
                raise
    if mode == "0":
        return legacy
    try:
        candidates = _graph_plans(op, direction, h, code, shapes, params, ptrs, _tensor_cores(dtype))
        why = f"no graph-API plan within {_workspace_limit()} bytes of workspace"
    except (NativeLibraryError, ShapeError) as exc:
        candidates, why = [], str(exc)
    if not candidates:
        graph_fallbacks[key] = why
        if legacy is None:
            legacy = _legacy_plan(op, direction, h, code, shapes, params, math_type, ptrs, device)
        return legacy
    pool = candidates + ([legacy] if legacy is not None else [])
    best = pool[0] if len(pool) == 1 else _fastest(pool, lambda p: _launch(op, direction, h, code, p, ptrs, device))
    for plan in candidates:
        if plan is not best:
            _cudnn.destroy(plan.plan)
    return best


def _plan(op: str, direction: str, x_shape: tuple, w_shape: tuple, y_shape: tuple, dtype: np.dtype,
          params: tuple[Pair, Pair, Pair, int], device: int,
          ptrs: tuple[int, int, int]) -> tuple[int, _Plan | _GraphPlan]:
    """(handle, plan) for one direction, made current on ``device``; ptrs (x, w, y) serve the search."""
    code, math_type, mode = _DTYPES[dtype], _math_type(dtype), _graph_mode()
    _cudart.set_device(device)
    h = _cudnn.handle(device)
    # A graph plan holds for pointers aligned as the ones it was made on (legacy plans ignore alignment).
    key = (direction, device, code, x_shape, w_shape, y_shape, params, math_type, mode,
           0 if mode == "0" else _alignment(ptrs))
    plan = _plans.get(key)
    if plan is None:
        _cudart.refuse_in_capture(op, "choosing a cuDNN plan runs and times candidate kernels; run the step "
                                      "once before capturing it (make_graphed_step's warmup) so the plan exists")
        plan = _plans[key] = _make_plan(op, direction, h, code, (x_shape, w_shape, y_shape), dtype, params,
                                        math_type, ptrs, device, mode, key)
    return h, plan


def _launch(op: str, direction: str, h: int, code: int, plan: _Plan | _GraphPlan, ptrs: tuple[int, int, int],
            device: int) -> None:
    """Run a plan on (x, w, y) pointers, the one of them the direction computes being written."""
    ws = _workspace(plan.workspace_bytes, device)
    if type(plan) is _GraphPlan:
        _cudnn.execute(op, h, plan.plan, ptrs, ws.ptr)
    else:
        legacy_ptrs = tuple(ptrs[i] for i in _LEGACY_ORDER[direction])
        _cudnn.convolve(op, direction, h, code, plan.descs, legacy_ptrs, plan.algo, ws.ptr, plan.workspace_bytes)


def _run(op: str, direction: str, x_shape: tuple, w_shape: tuple, y_shape: tuple, dtype: np.dtype,
         params: tuple[Pair, Pair, Pair, int], device: int, ptrs: tuple[int, int, int]) -> None:
    """Plan (once) and run one direction on (x, w, y) pointers."""
    h, plan = _plan(op, direction, x_shape, w_shape, y_shape, dtype, params, device, ptrs)
    _launch(op, direction, h, _DTYPES[dtype], plan, ptrs, device)


def _bias_descriptor(op: str, code: int, channels: int) -> int:
    desc = _bias_descs.get((code, channels))
    if desc is None:
        desc = _bias_descs[(code, channels)] = _cudnn.tensor_4d(op, code, (1, channels, 1, 1))
    return desc


def _check(op: str, a: CudaArray, b: CudaArray) -> None:
    """Device and dtype checks; shapes are validated by the NumPy backend's helpers, as on every backend."""
    if a.device != b.device:
        raise DeviceMismatchError(op, "operands are on different devices", a, b)
    if a.dtype != b.dtype or a.dtype not in _DTYPES:
        raise DTypeError(op, "operands must share a dtype, float32 or float64", a, b)


def conv2d_forward(x: CudaArray, w: CudaArray, b: CudaArray | None, stride: Pair, padding: Pair,
                   dilation: Pair, groups: int) -> CudaArray:
    """y = cross-correlation of x (N, C, H, W) with w (K, C/groups, kh, kw), plus b (K,) if given."""
    op = "conv2d_forward"
    oh, ow = conv2d_output_hw(op, x.shape, w.shape, stride, padding, dilation, groups)
    _check(op, x, w)
    if b is not None:
        _check(op, x, b)
        if b.shape != (w.shape[0],):
            raise ShapeError(op, f"bias must have shape ({w.shape[0]},), got {b.shape}", b)
    y = storage.empty((x.shape[0], w.shape[0], oh, ow), x.dtype, x.device)
    if y.size == 0:
        return y
    x, w = storage.contiguous(x), storage.contiguous(w)
    params = _params(stride, padding, dilation, groups)
    ptrs = (x.ptr, w.ptr, y.ptr)
    h, plan = _plan(op, "forward", x.shape, w.shape, y.shape, x.dtype, params, x.device, ptrs)
    code = _DTYPES[x.dtype]
    if b is not None:
        b = storage.contiguous(b)
    if b is None or type(plan) is _GraphPlan:
        _launch(op, "forward", h, code, plan, ptrs, x.device)
        if b is not None:  # one broadcast add over y, in place
            k = b.shape[0]
            elementwise.add(y, b.view((1, k, 1, 1), (k, 1, 1, 1), b.offset), out=y)
        return y
    ws = _workspace(plan.workspace_bytes, x.device)
    one, zero = _cudnn.ONE_ZERO[code]
    xd, wd, cd, yd = plan.descs
    bd = _bias_descriptor(op, code, y.shape[1])
    if plan.algo == _cudnn.FWD_IMPLICIT_PRECOMP_GEMM:
        # The bias rides in the convolution's epilogue, saving a pass over y; alpha2 = 0 leaves z (= y) out.
        _cudnn.call(op, "cudnnConvolutionBiasActivationForward", h, one, xd, x.ptr, wd, w.ptr, cd,
                    plan.algo, ws.ptr, plan.workspace_bytes, zero, yd, y.ptr, bd, b.ptr,
                    _cudnn.identity_activation(op), yd, y.ptr)
    else:
        _cudnn.convolve(op, "forward", h, code, plan.descs, ptrs, plan.algo, ws.ptr, plan.workspace_bytes)
        _cudnn.call(op, "cudnnAddTensor", h, one, bd, b.ptr, one, yd, y.ptr)
    return y


def conv2d_backward_input(gy: CudaArray, w: CudaArray, x_shape: tuple[int, ...], stride: Pair, padding: Pair,
                          dilation: Pair, groups: int) -> CudaArray:
    """gx of shape ``x_shape``: any input shape whose forward output is gy's (so output_padding works)."""
    op = "conv2d_backward_input"
    x_shape = tuple(int(v) for v in x_shape)
    oh, ow = conv2d_output_hw(op, x_shape, w.shape, stride, padding, dilation, groups)
    _check(op, gy, w)
    check_grad_shape(op, gy, (x_shape[0], w.shape[0], oh, ow))
    gx = storage.empty(x_shape, gy.dtype, gy.device)
    if gx.size == 0:
        return gx
    gy, w = storage.contiguous(gy), storage.contiguous(w)
    params = _params(stride, padding, dilation, groups)
    _run(op, "backward_data", x_shape, w.shape, gy.shape, gy.dtype, params, gy.device,
         (gx.ptr, w.ptr, gy.ptr))
    return gx


def conv2d_backward_weight(gy: CudaArray, x: CudaArray, w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                           dilation: Pair, groups: int) -> CudaArray:
    """gw of shape ``w_shape`` (K, C/groups, kh, kw), summed over the batch."""
    op = "conv2d_backward_weight"
    w_shape = tuple(int(v) for v in w_shape)
    oh, ow = conv2d_output_hw(op, x.shape, w_shape, stride, padding, dilation, groups)
    _check(op, gy, x)
    check_grad_shape(op, gy, (x.shape[0], w_shape[0], oh, ow))
    gw = storage.empty(w_shape, x.dtype, x.device)
    code = _DTYPES[x.dtype]
    if gy.size == 0:  # an empty batch: the sum over it is zero
        _cudart.set_device(x.device)
        desc = _cudnn.tensor_4d(op, code, w_shape)
        _cudnn.call(op, "cudnnSetTensor", _cudnn.handle(x.device), desc, gw.ptr, _cudnn.ONE_ZERO[code][1])
        _cudnn.call(op, "cudnnDestroyTensorDescriptor", desc)
        return gw
    gy, x = storage.contiguous(gy), storage.contiguous(x)
    params = _params(stride, padding, dilation, groups)
    _run(op, "backward_filter", x.shape, w_shape, gy.shape, x.dtype, params, x.device,
         (x.ptr, gw.ptr, gy.ptr))
    return gw
