"""cuBLAS matrix products on CudaArray with NumPy matmul semantics (batched, broadcast batch dims).

Row-major C = A @ B is computed as the column-major C^T = B^T A^T; operands whose last two axes are
transposed-contiguous become CUBLAS_OP_T instead of a copy. TF32 is opt-in through ``set_tf32``.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from keydnn.domain.errors import DeviceMismatchError, DeviceNotSupportedError, DTypeError, ShapeError

from . import _cublas, _cudart, _lib, storage
from .storage import CudaArray

_DTYPES = {np.dtype(np.float32): _cublas.CUDA_R_32F, np.dtype(np.float64): _cublas.CUDA_R_64F}
_INT_MAX = 2**31 - 1

_tf32 = False
_handles: dict[int, list[int]] = {}  # device -> [handle, math mode currently set on it]
# (device, stream) -> the cuBLAS workspace bound while the handle works on that stream. Left to itself,
# cuBLAS keeps a default workspace of its own, allocates another while a stream is captured into a CUDA graph
# and drops it when the stream is changed back (cublasSetStream resets the workspace): the graph's GEMMs then
# replay into memory cudaMalloc hands out again, and overwrite whatever the allocator later put there (seen
# on the H200: a graphed MLP step alternating with an eager one found its labels overwritten by float data).
# PyTorch binds a workspace per (handle, stream) for the same reason. These are cudaMalloc'd once, outside
# every allocator pool, and kept for the process: a graph may be replayed as long as it lives.
_workspaces: dict[tuple[int, int], int] = {}


def workspace_bytes() -> int:
    """Bytes of each bound cuBLAS workspace: ``KEYDNN_CUBLAS_WORKSPACE_MB`` (default 32 MiB, cuBLAS's own
    recommendation for Hopper; more than the older architectures need)."""
    raw = os.environ.get("KEYDNN_CUBLAS_WORKSPACE_MB", "32")
    try:
        mib = int(raw)
    except ValueError:
        raise ValueError(f"KEYDNN_CUBLAS_WORKSPACE_MB must be a whole number of MiB, got {raw!r}") from None
    if mib < 0:
        raise ValueError(f"KEYDNN_CUBLAS_WORKSPACE_MB must be >= 0, got {mib}")
    return mib << 20


def _bind_workspace(device: int, handle: int, stream: int) -> None:
    """Give ``handle`` (of ``device``, now on ``stream``) the workspace KeyDNN keeps for that stream."""
    nbytes = workspace_bytes()
    key = (device, stream)
    ptr = _workspaces.get(key)
    if ptr is None:
        if nbytes:
            _cudart.set_device(device)
            ptr = _cudart.malloc(nbytes)
            if ptr <= 0:
                _cudart.check(-ptr or 2, f"matmul: cudaMalloc of the {nbytes >> 20} MiB cuBLAS workspace")
        else:
            ptr = 0
        _workspaces[key] = ptr
    _cublas.call("matmul", "cublasSetWorkspace_v2", handle, ptr or None, nbytes if ptr else 0)


def set_tf32(enabled: bool) -> None:
    """Let float32 matmul (and cuDNN convolution) use TF32 tensor cores: faster, ~1e-3 relative error."""
    global _tf32
    _tf32 = bool(enabled)


def tf32_enabled() -> bool:
    return _tf32


def _handle(device: int, math_mode: int) -> int:
    entry = _handles.get(device)
    if entry is None:
        if not _handles:  # first handle of the process: give the library cuBLAS's GEMM entry points
            cublas = _cublas.lib()
            _lib.check(_lib.lib.kd_blas_bind(_cublas.address(cublas.cublasGemmEx),
                                             _cublas.address(cublas.cublasGemmStridedBatchedEx)), "matmul")
        entry = _handles[device] = [_cublas.create_handle(), -1]
        if _cudart.stream:
            _cublas.call("matmul", "cublasSetStream_v2", entry[0], _cudart.stream)
        _bind_workspace(device, entry[0], _cudart.stream)
    if entry[1] != math_mode:
        _cublas.call("matmul", "cublasSetMathMode", entry[0], math_mode)
        entry[1] = math_mode
    return entry[0]


def prepare(device: int) -> None:
    """Create ``device``'s cuBLAS handle now (before a graph capture, whose kernels it will then record),
    when cuBLAS can be loaded; a missing cuBLAS is reported by the first matmul, as without graphs."""
    if device in _handles:
        return
    try:
        _cublas.lib()
    except DeviceNotSupportedError:
        return
    _cudart.set_device(device)
    _handle(device, _cublas.TF32_TENSOR_OP_MATH if _tf32 else _cublas.DEFAULT_MATH)


def set_stream(stream: int, device: int) -> None:
    """Point ``device``'s cuBLAS handle at ``stream`` of that device, with its workspace (graphs.use_stream;
    a handle created later follows _cudart.stream)."""
    entry = _handles.get(device)
    if entry is not None:
        _cublas.call("set_stream", "cublasSetStream_v2", entry[0], stream or None)
        _bind_workspace(device, entry[0], stream)


def gemm_setup(device: int, dtype: np.dtype) -> tuple[int, int]:
    """(cuBLAS handle, compute type) a GEMM in ``dtype`` on ``device`` runs with: matmul's, and the library's
    own loops that call cuBLAS (the seed GRU's sequence, gru_seed.cu)."""
    code = _DTYPES[dtype]
    tf32 = _tf32 and code == _cublas.CUDA_R_32F
    if code == _cublas.CUDA_R_32F:
        compute = _cublas.COMPUTE_32F_FAST_TF32 if tf32 else _cublas.COMPUTE_32F
    else:
        compute = _cublas.COMPUTE_64F
    _cudart.set_device(device)
    return _handle(device, _cublas.TF32_TENSOR_OP_MATH if tf32 else _cublas.DEFAULT_MATH), compute


def _layout(rows: int, cols: int, rs: int, cs: int) -> tuple[int, int] | None:
    """(cuBLAS op, leading dim) for a row-major (rows, cols) view with element strides (rs, cs), or None.

    In column-major terms a row-major matrix is its own transpose, so rows-contiguous maps to OP_N and
    columns-contiguous (a transposed view) to OP_T. Strides of length-1 axes are never read.
    """
    if rows == 0 or cols == 0:
        return _cublas.OP_N, max(cols, 1)
    if (cols == 1 or cs == 1) and (rows == 1 or rs >= cols):
        return _cublas.OP_N, rs if rows > 1 else cols
    if (rows == 1 or rs == 1) and (cols == 1 or cs >= rows):
        return _cublas.OP_T, cs if cols > 1 else rows
    return None


def _matrix(x: CudaArray) -> tuple[CudaArray, int, int]:
    """``x`` itself when its last two axes suit cuBLAS, else a contiguous copy; with its (op, ld)."""
    rows, cols = x.shape[-2:]
    found = _layout(rows, cols, x.strides[-2], x.strides[-1])
    if found is None:
        x = storage.contiguous(x)
        found = _layout(rows, cols, x.strides[-2], x.strides[-1])
    return x, found[0], found[1]


def _batch_strides(x: CudaArray, batch: tuple[int, ...]) -> list[int]:
    """Element strides of ``x``'s batch axes broadcast to ``batch`` (0 where broadcast)."""
    own = x.shape[:-2]
    pad = len(batch) - len(own)
    return [0 if i < pad or own[i - pad] == 1 else x.strides[i - pad] for i in range(len(batch))]


def _collapse(sizes: list[int], *strides: list[int]) -> list[tuple[int, ...]]:
    """Merge adjacent batch axes that every operand walks with one stride: [(size, stride_0, ...), ...]."""
    dims = [(n, *(s[i] for s in strides)) for i, n in enumerate(sizes) if n != 1]
    merged: list[tuple[int, ...]] = []
    for d in dims:
        if merged and all(p == q * d[0] for p, q in zip(merged[-1][1:], d[1:], strict=True)):
            merged[-1] = (merged[-1][0] * d[0], *d[1:])
        else:
            merged.append(d)
    return merged


def _check(a: CudaArray, b: CudaArray) -> None:
    if a.device != b.device:
        raise DeviceMismatchError("matmul", "operands are on different devices", a, b)
    if a.dtype != b.dtype or a.dtype not in _DTYPES:
        raise DTypeError("matmul", "operands must share a dtype, float32 or float64", a, b)
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError("matmul", "the CUDA kernel takes operands of at least 2 dimensions", a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError("matmul", f"inner sizes differ ({a.shape[-1]} vs {b.shape[-2]})", a, b)


def matmul(a: CudaArray, b: CudaArray) -> CudaArray:
    """``a @ b`` for operands of >= 2 dimensions, float32 or float64, on one device."""
    _check(a, b)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if len(a.shape) == 2 and len(b.shape) == 2:  # the common case (Linear layers): one plain GEMM
        out = storage.new((m, n), a.dtype, a.device)
        if out.size:
            a, op_a, lda = _matrix(a)
            b, op_b, ldb = _matrix(b)
            _gemm(a, b, out, op_a, op_b, lda, ldb, m, n, k, (1, 0, 0, 0))
        return out
    try:
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except ValueError:
        raise ShapeError("matmul", "batch dimensions do not broadcast", a, b) from None
    out = storage.empty(batch + (m, n), a.dtype, a.device)
    if out.size == 0:
        return out
    a, op_a, lda = _matrix(a)
    b, op_b, ldb = _matrix(b)
    dims = _collapse(list(batch), _batch_strides(a, batch), _batch_strides(b, batch), list(out.strides[:-2]))
    # A batch of row-major A against one shared B is a single taller GEMM (as torch does).
    if dims and op_a == _cublas.OP_N and dims[-1][2] == 0 and dims[-1][1] == m * lda \
            and dims[-1][0] * m <= _INT_MAX:
        m *= dims.pop()[0]
    inner = dims.pop() if dims else (1, 0, 0, 0)
    size = a.itemsize
    for idx in itertools.product(*(range(d[0]) for d in dims)):
        offs = [sum(i * d[j] for i, d in zip(idx, dims, strict=True)) * size for j in (1, 2, 3)]
        _gemm(a, b, out, op_a, op_b, lda, ldb, m, n, k, inner, offs)
    return out


def _gemm(a: CudaArray, b: CudaArray, out: CudaArray, op_a: int, op_b: int, lda: int, ldb: int,
          m: int, n: int, k: int, inner: tuple[int, ...], offs: list[int] | tuple = (0, 0, 0)) -> None:
    """One (strided-batched when inner[0] > 1) GEMM: inner = (count, stride_a, stride_b, stride_out)."""
    if max(m, n, k, lda, ldb, inner[0]) > _INT_MAX:
        raise ShapeError("matmul", "a matrix dimension or batch exceeds cuBLAS's 32-bit limit", a, b)
    dtype = _DTYPES[a.dtype]
    handle, compute = gemm_setup(a.device, a.dtype)
    one, zero = _cublas.ONE_ZERO[dtype]
    # column-major: C^T (n x m) = op(B^T) (n x k) @ op(A^T) (k x m)
    record = _lib.pack_gemm(handle, one, zero, b.ptr + offs[1], a.ptr + offs[0], out.ptr + offs[2],
                            inner[2], inner[1], inner[3], op_b, op_a, n, m, k, ldb, lda, n, dtype, compute,
                            inner[0], _cublas.GEMM_DEFAULT)
    status = _lib.lib.kd_gemm(record)
    if status:
        _cublas.check(status, "matmul (cublasGemm%sEx)" % ("StridedBatched" if inner[0] > 1 else ""))
