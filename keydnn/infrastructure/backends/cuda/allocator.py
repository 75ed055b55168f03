"""Caching device allocator: freed blocks return to a per-device free list keyed by size class for reuse.

``take`` hands out (address, block size); the owning CudaArray gives the block back with ``release`` when it
dies (storage.py), so there is no separate block object per allocation.

cudaMalloc runs only on a miss (and cudaFree only in ``empty_cache``), so the steady state of a training loop
makes no runtime allocation calls and never synchronises. Sizes round up to 512 B up to 1 MiB and to
2 MiB above, so a loop of similar tensors lands in the same classes. Every kernel runs on the default stream,
so a block freed on the host can be reused at once: later work is ordered after the earlier users.
"""

from __future__ import annotations

from keydnn.domain.errors import NativeLibraryError

from . import _cudart

SMALL_LIMIT = 1 << 20
SMALL_ROUND = 512
LARGE_ROUND = 2 << 20


def size_class(nbytes: int) -> int:
    """The block size a request of ``nbytes`` gets."""
    if nbytes <= SMALL_LIMIT:
        return (nbytes + SMALL_ROUND - 1) // SMALL_ROUND * SMALL_ROUND
    return (nbytes + LARGE_ROUND - 1) // LARGE_ROUND * LARGE_ROUND


class DeviceAllocator:
    """The cache and statistics of one device."""

    __slots__ = ("device", "free_blocks", "_classes", "allocated_bytes", "reserved_bytes",
                 "peak_allocated_bytes", "num_cuda_malloc", "num_cuda_free", "cache_hits")

    def __init__(self, device: int) -> None:
        self.device = device
        self.free_blocks: dict[int, list[int]] = {}  # block size -> cached block addresses
        # request size -> (block size, that size's free list): a loop asks for the same few sizes
        self._classes: dict[int, tuple[int, list[int]]] = {}
        self.allocated_bytes = 0
        self.reserved_bytes = 0
        self.peak_allocated_bytes = 0
        self.num_cuda_malloc = 0
        self.num_cuda_free = 0
        self.cache_hits = 0

    def take(self, nbytes: int) -> tuple[int, int]:
        """(device address, block size) of a block of at least ``nbytes``; (0, 0) for nothing."""
        entry = self._classes.get(nbytes)
        if entry is None:
            if nbytes <= 0:
                return 0, 0
            size = size_class(nbytes)
            entry = (size, self.free_blocks.setdefault(size, []))
            if len(self._classes) < 4096:
                self._classes[nbytes] = entry
        size, blocks = entry
        if blocks:
            ptr = blocks.pop()
            self.cache_hits += 1
        else:
            ptr = self._cuda_malloc(size)
        allocated = self.allocated_bytes = self.allocated_bytes + size
        if allocated > self.peak_allocated_bytes:
            self.peak_allocated_bytes = allocated
        return ptr, size

    def release(self, ptr: int, size: int) -> None:
        """Return a block from ``take`` to the cache (no device call: later work is ordered after it)."""
        self.allocated_bytes -= size
        self.free_blocks[size].append(ptr)  # take() made the list for this size

    def _cuda_malloc(self, size: int) -> int:
        _cudart.set_device(self.device)
        ptr = _cudart.malloc(size)
        if ptr < 0 and -ptr == _cudart.ERROR_MEMORY_ALLOCATION:
            self.empty_cache()  # the cache may hold enough memory in blocks of other sizes
            _cudart.set_device(self.device)
            ptr = _cudart.malloc(size)
        if ptr < 0:
            raise NativeLibraryError(
                _cudart.LIBRARY,
                "cudaMalloc",
                f"{_cudart.error_string(-ptr)} allocating {size} bytes on cuda:{self.device} "
                f"(allocated {self.allocated_bytes}, reserved {self.reserved_bytes})",
                -ptr,
            )
        self.num_cuda_malloc += 1
        self.reserved_bytes += size
        return ptr

    def empty_cache(self) -> None:
        """cudaFree every cached (unused) block of this device."""
        if not any(self.free_blocks.values()):
            return
        _cudart.set_device(self.device)
        for size, ptrs in self.free_blocks.items():  # the lists stay: _classes refers to them
            while ptrs:
                _cudart.free(ptrs.pop())
                self.num_cuda_free += 1
                self.reserved_bytes -= size

    def stats(self) -> dict[str, int]:
        cached = sum(size * len(ptrs) for size, ptrs in self.free_blocks.items())
        return {
            "allocated_bytes": self.allocated_bytes,
            "reserved_bytes": self.reserved_bytes,
            "cached_bytes": cached,
            "peak_allocated_bytes": self.peak_allocated_bytes,
            "num_cuda_malloc": self.num_cuda_malloc,
            "num_cuda_free": self.num_cuda_free,
            "num_alloc": self.cache_hits + self.num_cuda_malloc,
            "cache_hits": self.cache_hits,
        }

    def reset_peak(self) -> None:
        self.peak_allocated_bytes = self.allocated_bytes


pools: dict[int, DeviceAllocator] = {}  # device index -> its allocator


def allocator(device: int) -> DeviceAllocator:
    alloc = pools.get(device)
    if alloc is None:
        alloc = pools[device] = DeviceAllocator(device)
    return alloc


def memory_stats(device: int = 0) -> dict[str, int]:
    return allocator(device).stats()


def reset_peak_memory_stats(device: int = 0) -> None:
    allocator(device).reset_peak()


def empty_cache(device: int | None = None) -> None:
    for dev, alloc in list(pools.items()):
        if device is None or dev == device:
            alloc.empty_cache()
