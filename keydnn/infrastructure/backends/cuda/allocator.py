"""Caching device allocator: size classes, blocks split out of larger cached blocks and merged back, a
release-and-retry on out-of-memory, and statistics that add up (the design of PyTorch's and CuPy's allocators,
kept small).

``take`` hands out (address, block size); the owning CudaArray gives the block back with ``release`` when it
dies (storage.py). Requests round up to 512 B up to 1 MiB (the small pool, carved out of 2 MiB segments) and
to 2 MiB above (the large pool, one segment per miss). A request first takes a cached block of exactly its
size (the steady state of a training loop: no device call, no search); else the smallest cached block of its
pool that fits, split; else, after merging free neighbours within each segment, that search again; only then
cudaMalloc. When cudaMalloc fails for lack of memory, every wholly free segment is cudaFree'd and the call is
retried once before the error is raised. Every kernel runs on one stream at a time (the default stream, or a
graph's capture stream while warming up or capturing, with a synchronisation at each switch), so a block freed
on the host can be reused at once: later work is ordered after the earlier users.

A CUDA graph gets a private ``GraphPool`` (PyTorch's design): while it is being captured, every request is
served from segments the pool owns, and every block freed during the capture is kept for that graph, so the
addresses the graph replays stay valid and eager code never receives them. Every eager block live when a
capture begins is pinned by that graph: the graph may read or write it on every replay (parameters, optimizer
state, the static inputs), so when it is freed, during the capture or after it, it is parked, neither free
nor handed out, until every graph that pinned it is destroyed. (PyTorch leaves keeping those tensors alive to
the caller; a step whose closure died after its capture then replayed into memory reused by other tensors.)
Blocks of other graphs' pools freed during a capture are parked too; blocks of the pool freed later go back to
the pool. ``release_graph_pool`` gives the parked blocks back (or to the next live graph that pinned them)
and returns the pool's wholly free segments to the driver, and the rest as their last users free them.

The device calls are injected (``malloc``/``free``), so the logic runs on the CPU under a fake device.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable

from keydnn.domain.errors import NativeLibraryError

from . import _cudart

SMALL_LIMIT = 1 << 20
SMALL_ROUND = 512
SMALL_SEGMENT = 2 << 20
LARGE_ROUND = 2 << 20


def size_class(nbytes: int) -> int:
    """The block size a request of ``nbytes`` gets."""
    if nbytes <= SMALL_LIMIT:
        return (nbytes + SMALL_ROUND - 1) // SMALL_ROUND * SMALL_ROUND
    return (nbytes + LARGE_ROUND - 1) // LARGE_ROUND * LARGE_ROUND


class Block:
    """A piece of one cudaMalloc segment; ``prev``/``next`` are its neighbours in that segment (None at the
    segment's ends), so a wholly free segment is one free block with neither."""

    __slots__ = ("ptr", "size", "pool", "prev", "next", "free", "pins")

    def __init__(self, ptr: int, size: int, pool: _Pool, prev: Block | None = None,
                 nxt: Block | None = None) -> None:
        self.ptr, self.size, self.pool, self.prev, self.next, self.free = ptr, size, pool, prev, nxt, False
        self.pins: list[GraphPool] | None = None  # the live graphs captured while this eager block was live


class _Pool:
    """The free blocks of one pool: size -> blocks, and a sorted index of sizes for the best-fit search. The
    index is pruned lazily (a search drops the empty sizes it passes), so the exact-size path that a steady
    loop takes never touches it. ``owner`` is the GraphPool a pool belongs to (None for the eager pools)."""

    __slots__ = ("free", "sizes", "indexed", "owner")

    def __init__(self, owner: GraphPool | None = None) -> None:
        self.free: dict[int, list[Block]] = {}
        self.sizes: list[int] = []  # sorted; a superset of the sizes with free blocks
        self.indexed: set[int] = set()
        self.owner = owner

    def push(self, b: Block) -> None:
        b.free = True
        blocks = self.free.get(b.size)
        if blocks is None:
            blocks = self.free[b.size] = []
        blocks.append(b)
        if len(blocks) == 1 and b.size not in self.indexed:
            insort(self.sizes, b.size)
            self.indexed.add(b.size)

    def pop_fit(self, size: int) -> Block | None:
        """The smallest free block of at least ``size`` (most recently freed among equals), or None."""
        sizes, i = self.sizes, bisect_left(self.sizes, size)
        while i < len(sizes):
            blocks = self.free[sizes[i]]
            if blocks:
                return blocks.pop()
            self.indexed.discard(sizes.pop(i))
        return None

    def drain(self) -> list[Block]:
        """Every free block, the pool left empty (lists kept: the class cache refers to them)."""
        out = [b for blocks in self.free.values() for b in blocks]
        for blocks in self.free.values():
            blocks.clear()
        self.sizes.clear()
        self.indexed.clear()
        return out

    def cached_bytes(self) -> int:
        return sum(size * len(blocks) for size, blocks in self.free.items())


class GraphPool:
    """The private memory of one CUDA graph: its own small and large pools (segments only it uses), the eager
    blocks freed while it was captured (``parked``), and whether its graph is gone (``retired``)."""

    __slots__ = ("small", "large", "parked", "reserved_bytes", "retired")

    def __init__(self) -> None:
        self.small, self.large = _Pool(self), _Pool(self)
        self.parked: list[Block] = []
        self.reserved_bytes = 0
        self.retired = False


def _cuda_malloc(device: int) -> Callable[[int], int]:
    def malloc(size: int) -> int:
        _cudart.set_device(device)
        return _cudart.malloc(size)
    return malloc


def _cuda_free(device: int) -> Callable[[int], None]:
    def free(ptr: int) -> None:
        _cudart.set_device(device)
        _cudart.free(ptr)
    return free


class DeviceAllocator:
    """The cache and statistics of one device. ``malloc(size)`` returns an address or minus a cudaError
    status (``_cudart.malloc``'s convention); ``free(ptr)`` frees a segment."""

    def __init__(self, device: int, malloc: Callable[[int], int] | None = None,
                 free: Callable[[int], None] | None = None) -> None:
        self.device = device
        self._malloc = malloc or _cuda_malloc(device)
        self._free = free or _cuda_free(device)
        self.small, self.large = _Pool(), _Pool()
        self._active: dict[int, Block] = {}  # address -> block handed out
        # request size -> (block size, its free list, its pool): a loop asks for the same few sizes
        self._classes: dict[int, tuple[int, list[Block], _Pool]] = {}
        self.allocated_bytes = self.reserved_bytes = 0
        self.peak_allocated_bytes = self.peak_reserved_bytes = 0
        self.num_cuda_malloc = self.num_cuda_free = self.cache_hits = 0
        self.num_splits = self.num_merges = self.num_oom_retries = 0
        self.capture_pool: GraphPool | None = None  # the pool of the graph being captured, if any
        self.graph_pools: list[GraphPool] = []  # every pool not yet wholly returned to the driver
        self.pinned = 0  # eager blocks handed out that a live graph pinned (release's fast path skips pins)

    def take(self, nbytes: int) -> tuple[int, int]:
        """(device address, block size) of a block of at least ``nbytes``; (0, 0) for nothing."""
        if self.capture_pool is not None:
            return self._take_captured(nbytes)
        entry = self._classes.get(nbytes)
        if entry is None:
            if nbytes <= 0:
                return 0, 0
            size = size_class(nbytes)
            pool = self.small if size <= SMALL_LIMIT else self.large
            blocks = pool.free.get(size)
            if blocks is None:
                blocks = pool.free[size] = []
            entry = (size, blocks, pool)
            if len(self._classes) < 4096:
                self._classes[nbytes] = entry
        size, blocks, pool = entry
        if blocks:
            b = blocks.pop()
            self.cache_hits += 1
        else:
            b = self._take_slow(size, pool)
        b.free = False
        self._active[b.ptr] = b
        allocated = self.allocated_bytes = self.allocated_bytes + b.size
        if allocated > self.peak_allocated_bytes:
            self.peak_allocated_bytes = allocated
        return b.ptr, b.size

    def release(self, ptr: int, size: int) -> None:
        """Return a block from ``take`` to the cache (no device call: later work is ordered after it)."""
        b = self._active.pop(ptr)
        size = b.size
        self.allocated_bytes -= size
        pool = b.pool
        if self.pinned and b.pins is not None and self._park_pinned(b):
            return
        if pool.owner is not None or self.capture_pool is not None:
            self._release_graph(b)
            return
        b.free = True
        blocks = pool.free.get(size)
        if blocks is not None and (blocks or size in pool.indexed):  # inlined push: the size is indexed
            blocks.append(b)
        else:
            pool.push(b)

    # ---- graph pools ---------------------------------------------------------------------------------
    def begin_capture(self, pool: GraphPool) -> None:
        """Serve every request from ``pool`` (and keep every freed block for it) until ``end_capture``."""
        if self.capture_pool is not None:
            raise RuntimeError(f"cuda:{self.device}: a graph capture is already in progress")
        self.capture_pool = pool
        if pool not in self.graph_pools:
            self.graph_pools.append(pool)
        for b in self._active.values():  # every eager block the graph may touch on replay
            if b.pool.owner is None:
                if b.pins is None:
                    b.pins = []
                    self.pinned += 1
                b.pins.append(pool)

    def _park_pinned(self, b: Block) -> bool:
        """Park eager block ``b`` (just freed) with the first live graph that pinned it; False when none is."""
        pins = [gp for gp in b.pins if not gp.retired]
        self.pinned -= 1
        if not pins:
            b.pins = None
            return False
        b.pins = pins
        pins[0].parked.append(b)
        return True

    def end_capture(self) -> None:
        self.capture_pool = None

    def _take_captured(self, nbytes: int) -> tuple[int, int]:
        if nbytes <= 0:
            return 0, 0
        size = size_class(nbytes)
        gp = self.capture_pool
        pool = gp.small if size <= SMALL_LIMIT else gp.large
        blocks = pool.free.get(size)
        if blocks:
            b = blocks.pop()
            self.cache_hits += 1
        else:
            b = self._take_slow(size, pool)
        b.free = False
        self._active[b.ptr] = b
        self.allocated_bytes += b.size
        if self.allocated_bytes > self.peak_allocated_bytes:
            self.peak_allocated_bytes = self.allocated_bytes
        return b.ptr, b.size

    def _release_graph(self, b: Block) -> None:
        gp = self.capture_pool
        if gp is not None and b.pool.owner is not gp:  # freed mid-capture from outside the graph's pool: the
            gp.parked.append(b)                        # graph may use it, so it waits for the graph to go
            return
        b.pool.push(b)
        owner = b.pool.owner
        if owner is not None and owner.retired:
            self._trim(owner)

    def release_graph_pool(self, pool: GraphPool) -> None:
        """The graph of ``pool`` is gone: give its parked blocks back to the eager pools and free its segments
        (now, those wholly free; the rest when their last block is released). The caller has synchronised."""
        if self.capture_pool is pool:
            raise RuntimeError(f"cuda:{self.device}: cannot release the pool of the graph being captured")
        pool.retired = True
        parked, pool.parked = pool.parked, []
        for b in parked:
            pins = [gp for gp in b.pins if not gp.retired] if b.pins else []
            if pins:  # another live graph pinned it too: it stays parked, with that graph
                b.pins = pins
                pins[0].parked.append(b)
                continue
            b.pins = None
            b.pool.push(b)
        for owner in {id(b.pool.owner): b.pool.owner for b in parked if b.pool.owner is not None}.values():
            if owner.retired:
                self._trim(owner)
        self._trim(pool)

    def _trim(self, gp: GraphPool) -> None:
        """cudaFree every wholly free segment of a retired graph pool; forget the pool once it holds none."""
        for pool in (gp.small, gp.large):
            self._merge(pool)
            for b in pool.drain():
                if b.prev is None and b.next is None:
                    self._free(b.ptr)
                    self.num_cuda_free += 1
                    self.reserved_bytes -= b.size
                    gp.reserved_bytes -= b.size
                else:
                    pool.push(b)
        if gp.reserved_bytes == 0 and gp in self.graph_pools:
            self.graph_pools.remove(gp)

    def _take_slow(self, size: int, pool: _Pool) -> Block:
        b = pool.pop_fit(size)
        if b is None:
            self._merge(pool)
            b = pool.pop_fit(size)
        if b is None:
            b = self._new_segment(SMALL_SEGMENT if size <= SMALL_LIMIT else size, pool)
        else:
            self.cache_hits += 1
        if b.size > size:  # split: the rest stays cached in the same pool
            rest = Block(b.ptr + size, b.size - size, pool, b, b.next)
            if b.next is not None:
                b.next.prev = rest
            b.next, b.size = rest, size
            pool.push(rest)
            self.num_splits += 1
        return b

    def _merge(self, pool: _Pool) -> None:
        """Merge every run of free neighbours within a segment into one block."""
        free = pool.drain()
        for b in free:
            if b.prev is not None and b.prev.free:
                continue  # not the start of its run: merged into the run's first block below
            while b.next is not None and b.next.free:
                n = b.next
                b.size += n.size
                b.next = n.next
                if n.next is not None:
                    n.next.prev = b
                self.num_merges += 1
            pool.push(b)

    def _new_segment(self, size: int, pool: _Pool) -> Block:
        ptr = self._malloc(size)
        # (no cudaFree while capturing: the driver synchronises in it, which a capture forbids)
        if ptr < 0 and -ptr == _cudart.ERROR_MEMORY_ALLOCATION and self.capture_pool is None:
            self.num_oom_retries += 1
            self.empty_cache()  # the cache may hold enough memory in segments nobody uses
            ptr = self._malloc(size)
        if ptr < 0:
            raise NativeLibraryError(
                _cudart.LIBRARY,
                "cudaMalloc",
                f"{_cudart.error_string(-ptr)} allocating {size} bytes on cuda:{self.device} "
                f"(allocated {self.allocated_bytes}, reserved {self.reserved_bytes} after freeing the cache)",
                -ptr,
            )
        self.num_cuda_malloc += 1
        self.reserved_bytes += size
        if pool.owner is not None:
            pool.owner.reserved_bytes += size
        if self.reserved_bytes > self.peak_reserved_bytes:
            self.peak_reserved_bytes = self.reserved_bytes
        return Block(ptr, size, pool)

    def empty_cache(self) -> None:
        """Merge free neighbours, then cudaFree every segment of the eager pools that is wholly free (a live
        graph's pool keeps its segments: the graph replays their addresses)."""
        if self.capture_pool is not None:
            return
        for pool in (self.small, self.large):
            self._merge(pool)
            for b in pool.drain():
                if b.prev is None and b.next is None:
                    self._free(b.ptr)
                    self.num_cuda_free += 1
                    self.reserved_bytes -= b.size
                else:
                    pool.push(b)

    def stats(self) -> dict[str, int]:
        """reserved = allocated + cached (free in the eager pools) + graph_cached (free in graph pools) +
        graph_parked (eager blocks freed during a capture, held until the graph goes)."""
        pools = self.graph_pools
        return {
            "allocated_bytes": self.allocated_bytes,
            "reserved_bytes": self.reserved_bytes,
            "cached_bytes": self.small.cached_bytes() + self.large.cached_bytes(),
            "graph_pools": len(pools),
            "graph_reserved_bytes": sum(gp.reserved_bytes for gp in pools),
            "graph_cached_bytes": sum(gp.small.cached_bytes() + gp.large.cached_bytes() for gp in pools),
            "graph_parked_bytes": sum(b.size for gp in pools for b in gp.parked),
            "peak_allocated_bytes": self.peak_allocated_bytes,
            "peak_reserved_bytes": self.peak_reserved_bytes,
            "num_cuda_malloc": self.num_cuda_malloc,
            "num_cuda_free": self.num_cuda_free,
            "num_alloc": self.cache_hits + self.num_cuda_malloc,
            "cache_hits": self.cache_hits,
            "num_splits": self.num_splits,
            "num_merges": self.num_merges,
            "num_oom_retries": self.num_oom_retries,
        }

    def reset_peak(self) -> None:
        self.peak_allocated_bytes = self.allocated_bytes
        self.peak_reserved_bytes = self.reserved_bytes


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
