"""CUDA runtime layer: the kernel table is complete, creation/transfer kernels, the caching allocator's
reuse and statistics, device helpers, events, and storage views."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from keydnn.domain.errors import NativeLibraryError
from keydnn.infrastructure.backends import cuda
from keydnn.infrastructure.backends.contract import KERNELS
from keydnn.infrastructure.backends.cuda import _cudart, allocator, storage
from tests.cuda.cuda_helpers import assert_close

pytestmark = pytest.mark.cuda


def test_table_has_every_contract_kernel(kt):
    missing = [name for name in KERNELS if not callable(getattr(kt, name, None))]
    assert not missing
    assert cuda.table(0) is kt


def test_size_classes():
    assert allocator.size_class(1) == 512 and allocator.size_class(512) == 512
    assert allocator.size_class(513) == 1024
    assert allocator.size_class(1 << 20) == 1 << 20
    assert allocator.size_class((1 << 20) + 1) == 2 << 20
    assert allocator.size_class(5 << 20) == 6 << 20


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_creation_and_transfer(kt, rng, dtype):
    host = (rng.standard_normal((5, 7)) * 10).astype(dtype)
    assert_close(kt.to_host(kt.from_host(host)), host)
    assert_close(kt.to_host(kt.from_host(host[::2, ::-3])), host[::2, ::-3])  # non-contiguous source
    assert_close(kt.to_host(kt.zeros((3, 0, 2), dtype)), np.zeros((3, 0, 2), dtype))
    assert_close(kt.to_host(kt.zeros((4, 3), dtype)), np.zeros((4, 3), dtype))
    assert_close(kt.to_host(kt.full((1001,), 1, dtype)), np.full((1001,), 1, dtype))
    e = kt.empty((2, 3), dtype)
    assert e.shape == (2, 3) and e.dtype == dtype and e.is_contiguous and e.device == 0


@pytest.mark.parametrize(
    "args",
    [
        (0, 10, 1, np.int64),
        (2, -7, -3, np.int64),
        (0.5, 3.0, 0.25, np.float32),
        (0, 1, 0.1, np.float64),
        (5, 5, 1, np.float32),
    ],
    ids=str,
)
def test_arange(kt, args):
    assert_close(kt.to_host(kt.arange(*args)), np.arange(args[0], args[1], args[2], dtype=args[3]))


def test_cudaarray_views(kt):
    a = kt.from_host(np.arange(24.0).reshape(2, 3, 4))
    assert (a.ndim, a.size, a.itemsize, a.nbytes) == (3, 24, 8, 192)
    v = kt.getitem(a, (1, slice(None), slice(1, None, 2)))
    assert v.shape == (3, 2) and v.strides == (4, 2) and v.offset == 13 and not v.is_contiguous
    assert v.ptr == a.ptr + 13 * 8
    assert "CudaArray" in repr(v) and "strides" in repr(v)
    assert not hasattr(a, "__array__")
    assert storage.contiguous(a) is a
    assert storage.contiguous(v).is_contiguous


def test_allocator_reuses_blocks(kt):
    gc.collect()
    stats = cuda.memory_stats(0)
    for _ in range(200):
        x = kt.empty((1000, 250), np.float32)
        y = kt.add(x, 1.0)
        del x, y
    after = cuda.memory_stats(0)
    assert after["num_cuda_malloc"] - stats["num_cuda_malloc"] <= 2
    assert after["reserved_bytes"] - stats["reserved_bytes"] <= 2 * allocator.SMALL_SEGMENT
    assert after["cache_hits"] - stats["cache_hits"] >= 398
    assert after["allocated_bytes"] == stats["allocated_bytes"]


def test_allocator_stats_and_empty_cache(kt):
    gc.collect()
    cuda.empty_cache(0)
    base = cuda.memory_stats(0)
    # what stays cached after empty_cache is the free part of small segments other live arrays still use
    assert base["cached_bytes"] == base["reserved_bytes"] - base["allocated_bytes"]
    allocator.reset_peak_memory_stats(0)
    x = kt.empty((3 << 20,), np.bool_)  # 3 MiB -> a 4 MiB block
    s = cuda.memory_stats(0)
    assert s["allocated_bytes"] - base["allocated_bytes"] == 4 << 20
    assert s["peak_allocated_bytes"] >= s["allocated_bytes"]
    view = kt.getitem(x, (slice(10, 20),))
    del x
    assert cuda.memory_stats(0)["allocated_bytes"] == s["allocated_bytes"]  # the view keeps the block alive
    del view
    s2 = cuda.memory_stats(0)
    assert s2["allocated_bytes"] == base["allocated_bytes"]
    assert s2["cached_bytes"] == s2["reserved_bytes"] - s2["allocated_bytes"]
    assert s2["reserved_bytes"] == s["reserved_bytes"]  # a freed block stays cached
    cuda.empty_cache(0)
    s3 = cuda.memory_stats(0)
    # a new 4 MiB segment is freed again; a block split out of a cached segment merges back into it
    assert s["reserved_bytes"] - base["reserved_bytes"] in (0, 4 << 20)
    assert s3["cached_bytes"] == base["cached_bytes"] and s3["reserved_bytes"] == base["reserved_bytes"]


def test_out_of_memory_raises_native_error(kt):
    free, total = _cudart.mem_get_info()
    with pytest.raises(NativeLibraryError, match="cudaMalloc"):
        kt.empty((total * 4,), np.bool_)
    assert kt.to_host(kt.full((3,), 2.0, np.float32)).tolist() == [2.0, 2.0, 2.0]  # still usable


def test_device_helpers_and_events(kt):
    assert cuda.device_count() >= 1 and cuda.is_available() and cuda.unavailable_reason() == ""
    assert _cudart.device_name(0)
    rt, drv = _cudart.versions()
    assert rt > 0 and drv > 0
    start, end = _cudart.Event(), _cudart.Event()
    start.record()
    kt.add(kt.zeros((1 << 20,), np.float32), 1.0)
    end.record()
    assert start.elapsed_ms(end) >= 0.0
    cuda.synchronize(0)


def test_copy_between_devices(kt, rng):
    a = rng.standard_normal((4, 5))
    view = kt.transpose(kt.from_host(a), (1, 0))
    copy = cuda.copy_between_devices(view, 0)
    assert copy.is_contiguous and copy.buffer is not view.buffer
    assert_close(kt.to_host(copy), a.T)
    if cuda.device_count() > 1:
        other = cuda.copy_between_devices(view, 1)
        assert other.device == 1
        assert_close(cuda.table(1).to_host(other), a.T)


def test_packed_records_match_the_library_layout(kt):
    from keydnn.infrastructure.backends.cuda import _lib

    for name, record in _lib._RECORDS.items():
        assert _lib.lib.kd_sizeof(name.encode()) == record.size, name
    assert _lib.lib.kd_sizeof(b"no_such_record") == -1
