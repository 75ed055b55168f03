"""Caching device allocator: freed blocks return to a per-device free list keyed by size class for reuse.

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


class Block:
    """One device allocation; returns itself to its allocator's cache when the last view of it dies."""

    __slots__ = ("ptr", "nbytes", "device", "_owner", "__weakref__")

    def __init__(self, ptr: int, nbytes: int, device: int, owner: DeviceAllocator | None) -> None:
        self.ptr, self.nbytes, self.device, self._owner = ptr, nbytes, device, owner

    def __del__(self) -> None:
        owner = self._owner
        if owner is not None:
            self._owner = None
            owner.release(self.ptr, self.nbytes)

    def __repr__(self) -> str:
        return f"Block(ptr=0x{self.ptr:x}, nbytes={self.nbytes}, device={self.device})"


class DeviceAllocator:
    """The cache and statistics of one device."""

    __slots__ = ("device", "free_blocks", "allocated_bytes", "reserved_bytes", "peak_allocated_bytes",
                 "num_cuda_malloc", "num_cuda_free", "num_alloc", "cache_hits")

    def __init__(self, device: int) -> None:
        self.device = device
        self.free_blocks: dict[int, list[int]] = {}
        self.allocated_bytes = 0
        self.reserved_bytes = 0
        self.peak_allocated_bytes = 0
        self.num_cuda_malloc = 0
        self.num_cuda_free = 0
        self.num_alloc = 0
        self.cache_hits = 0

    def allocate(self, nbytes: int) -> Block:
        if nbytes <= 0:
            return Block(0, 0, self.device, None)
        size = size_class(nbytes)
        cached = self.free_blocks.get(size)
        if cached:
            ptr = cached.pop()
            self.cache_hits += 1
        else:
            ptr = self._cuda_malloc(size)
        self.num_alloc += 1
        allocated = self.allocated_bytes = self.allocated_bytes + size
        if allocated > self.peak_allocated_bytes:
            self.peak_allocated_bytes = allocated
        return Block(ptr, size, self.device, self)

    def release(self, ptr: int, size: int) -> None:
        self.allocated_bytes -= size
        blocks = self.free_blocks.get(size)
        if blocks is None:
            self.free_blocks[size] = [ptr]
        else:
            blocks.append(ptr)

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
        for size, ptrs in self.free_blocks.items():
            while ptrs:
                _cudart.free(ptrs.pop())
                self.num_cuda_free += 1
                self.reserved_bytes -= size
        self.free_blocks.clear()

    def stats(self) -> dict[str, int]:
        cached = sum(size * len(ptrs) for size, ptrs in self.free_blocks.items())
        return {
            "allocated_bytes": self.allocated_bytes,
            "reserved_bytes": self.reserved_bytes,
            "cached_bytes": cached,
            "peak_allocated_bytes": self.peak_allocated_bytes,
            "num_cuda_malloc": self.num_cuda_malloc,
            "num_cuda_free": self.num_cuda_free,
            "num_alloc": self.num_alloc,
            "cache_hits": self.cache_hits,
        }

    def reset_peak(self) -> None:
        self.peak_allocated_bytes = self.allocated_bytes


_allocators: dict[int, DeviceAllocator] = {}


def allocator(device: int) -> DeviceAllocator:
    alloc = _allocators.get(device)
    if alloc is None:
        alloc = _allocators[device] = DeviceAllocator(device)
    return alloc


def allocate(nbytes: int, device: int) -> Block:
    alloc = _allocators.get(device)
    return (alloc if alloc is not None else allocator(device)).allocate(nbytes)


def memory_stats(device: int = 0) -> dict[str, int]:
    return allocator(device).stats()


def reset_peak_memory_stats(device: int = 0) -> None:
    allocator(device).reset_peak()


def empty_cache(device: int | None = None) -> None:
    for dev, alloc in list(_allocators.items()):
        if device is None or dev == device:
            alloc.empty_cache()
