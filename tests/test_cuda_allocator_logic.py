"""The CUDA caching allocator's logic on the CPU, under a fake device (injected malloc/free): size classes,
reuse, splitting and merging within segments, release-and-retry on out-of-memory, statistics that add up
(checked after every step of random sequences), and a 300-step MLP training loop with a random batch size
replayed as an allocation trace."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keydnn.domain.errors import NativeLibraryError
from keydnn.infrastructure.backends.cuda import _cudart
from keydnn.infrastructure.backends.cuda.allocator import (
    SMALL_SEGMENT,
    DeviceAllocator,
    size_class,
)

MiB = 1 << 20


class FakeDevice:
    """cudaMalloc/cudaFree over a capacity, with gaps between segments so that no two are adjacent."""

    def __init__(self, capacity: int = 1 << 40) -> None:
        self.capacity, self.used, self.next, self.live = capacity, 0, 1 << 30, {}
        self.mallocs = self.frees = 0

    def malloc(self, size: int) -> int:
        if self.used + size > self.capacity:
            return -_cudart.ERROR_MEMORY_ALLOCATION
        ptr, self.next = self.next, self.next + size + (1 << 20)
        self.live[ptr] = size
        self.used += size
        self.mallocs += 1
        return ptr

    def free(self, ptr: int) -> None:
        self.used -= self.live.pop(ptr)  # KeyError: a double or foreign free
        self.frees += 1


def make(capacity: int = 1 << 40) -> tuple[DeviceAllocator, FakeDevice]:
    dev = FakeDevice(capacity)
    return DeviceAllocator(0, dev.malloc, dev.free), dev


def check_invariants(alloc: DeviceAllocator, dev: FakeDevice, live: dict[int, int]) -> None:
    s = alloc.stats()
    assert s["reserved_bytes"] == dev.used and s["num_cuda_malloc"] == dev.mallocs
    assert s["num_cuda_free"] == dev.frees
    assert s["allocated_bytes"] == sum(live.values())
    assert s["cached_bytes"] == s["reserved_bytes"] - s["allocated_bytes"]
    spans = sorted(live.items())
    for (p, n), (q, _) in zip(spans, spans[1:]):
        assert p + n <= q, "two live blocks overlap"
    for ptr, size in live.items():  # every live block lies inside one segment the device handed out
        assert any(seg <= ptr and ptr + size <= seg + n for seg, n in dev.live.items())


def test_size_classes():
    assert size_class(1) == 512 and size_class(512) == 512 and size_class(513) == 1024
    assert size_class(1 << 20) == 1 << 20 and size_class((1 << 20) + 1) == 2 << 20
    assert size_class(5 << 20) == 6 << 20


def test_same_size_reuses_the_block_without_device_calls():
    alloc, dev = make()
    for _ in range(100):
        ptr, size = alloc.take(3 * MiB)
        alloc.release(ptr, size)
    assert dev.mallocs == 1 and alloc.stats()["cache_hits"] == 99 and size == 4 * MiB


def test_small_requests_share_a_segment():
    alloc, dev = make()
    blocks = [alloc.take(1000) for _ in range(2000)]
    assert dev.mallocs == -(-2000 * 1024 // SMALL_SEGMENT)
    check_invariants(alloc, dev, dict(blocks))


def test_a_large_block_is_split_and_merged_back():
    alloc, dev = make()
    big = alloc.take(12 * MiB)
    alloc.release(*big)
    a, b = alloc.take(4 * MiB), alloc.take(8 * MiB)  # both out of the cached 12 MiB block
    assert dev.mallocs == 1 and {a[0], b[0]} == {big[0], big[0] + 4 * MiB}
    alloc.release(*a)
    alloc.release(*b)
    again = alloc.take(12 * MiB)  # the two halves merge into the whole again
    assert dev.mallocs == 1 and again == big and alloc.stats()["num_merges"] >= 1


def test_small_and_large_pools_do_not_share_blocks():
    alloc, dev = make()
    big = alloc.take(4 * MiB)
    alloc.release(*big)
    alloc.take(1000)
    assert dev.mallocs == 2  # a small request does not split a cached large block


def test_out_of_memory_frees_the_cache_and_retries_once():
    alloc, dev = make(capacity=8 * MiB)
    small = alloc.take(1000)  # a 2 MiB small segment
    alloc.release(*small)
    ptr, size = alloc.take(7 * MiB)  # 8 MiB: fits only once the idle small segment is freed
    assert size == 8 * MiB and alloc.stats()["num_oom_retries"] == 1 and dev.frees == 1
    with pytest.raises(NativeLibraryError, match=r"cudaMalloc.*allocating 2097152 bytes"):
        alloc.take(1 * MiB + 1)
    alloc.release(ptr, size)
    check_invariants(alloc, dev, {})
    assert alloc.take(1 * MiB + 1)[1] == 2 * MiB  # usable after the error: the 8 MiB block is split


def test_empty_cache_frees_only_wholly_free_segments():
    alloc, dev = make()
    keep = alloc.take(1000)
    drop = alloc.take(1000)
    big = alloc.take(10 * MiB)
    alloc.release(*drop)
    alloc.release(*big)
    alloc.empty_cache()
    assert dev.frees == 1 and alloc.stats()["reserved_bytes"] == SMALL_SEGMENT
    check_invariants(alloc, dev, dict([keep]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40 * MiB), st.integers(0, 1 << 30)), max_size=120),
       st.booleans())
def test_random_sequences_keep_the_books(ops, tight):
    alloc, dev = make(capacity=96 * MiB if tight else 1 << 40)
    live: dict[int, int] = {}
    for take, nbytes, pick in ops:
        if take or not live:
            try:
                ptr, size = alloc.take(nbytes)
            except NativeLibraryError:
                check_invariants(alloc, dev, live)
                continue
            assert size >= nbytes and ptr not in live
            live[ptr] = size
        else:
            ptr = sorted(live)[pick % len(live)]
            alloc.release(ptr, live.pop(ptr))
        check_invariants(alloc, dev, live)
    for ptr in list(live):
        alloc.release(ptr, live.pop(ptr))
    alloc.empty_cache()
    assert dev.used == 0 and alloc.stats()["allocated_bytes"] == 0


def mlp_trace(steps: int = 300, seed: int = 0, sizes=(784, 2048, 2048, 10), max_batch: int = 1024):
    """(op, key, nbytes) events of a float32 MLP trained with Adam at a random batch size each step:
    forward saves each layer's input and pre-activation, backward frees them as it goes, the optimizer keeps
    two moments per parameter and makes temporaries, the gradients live until the next zero_grad."""
    rng = np.random.default_rng(seed)
    params = [(f"W{i}", a * b * 4) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))] + \
             [(f"b{i}", b * 4) for i, b in enumerate(sizes[1:])]
    events = [("take", name, n) for name, n in params]
    for step in range(steps):
        batch = int(rng.integers(1, max_batch + 1))
        if step:
            events += [("release", f"g{name}", 0) for name, _ in params]  # zero_grad
        events.append(("take", "x", batch * sizes[0] * 4))
        for i, out in enumerate(sizes[1:]):
            events.append(("take", f"z{i}", batch * out * 4))
            if i < len(sizes) - 2:
                events.append(("take", f"a{i}", batch * out * 4))
        events += [("take", "loss", 4), ("take", "gz", batch * sizes[-1] * 4)]
        for i in reversed(range(len(sizes) - 1)):
            events += [("take", f"gW{i}", sizes[i] * sizes[i + 1] * 4), ("take", f"gb{i}", sizes[i + 1] * 4)]
            if i:
                events += [("take", "ga", batch * sizes[i] * 4), ("release", "gz", 0), ("release", f"z{i}", 0),
                           ("release", f"a{i - 1}", 0), ("take", "gz", batch * sizes[i] * 4), ("release", "ga", 0)]
        events += [("release", "gz", 0), ("release", "z0", 0), ("release", "x", 0), ("release", "loss", 0)]
        for name, n in params:
            if step == 0:
                events += [("take", f"m{name}", n), ("take", f"v{name}", n)]
            events += [("take", "t1", n), ("take", "t2", n), ("release", "t1", 0), ("release", "t2", 0)]
    return events


def replay(alloc: DeviceAllocator, events) -> int:
    """Run the trace; returns the peak of live requested-size-rounded bytes (a floor for any allocator)."""
    live: dict[str, tuple[int, int]] = {}
    peak = now = 0
    for op, key, nbytes in events:
        if op == "take":
            live[key] = alloc.take(nbytes)
            now += size_class(nbytes)
            peak = max(peak, now)
        else:
            ptr, size = live.pop(key)
            alloc.release(ptr, size)
            now -= size
    return peak


def test_variable_batch_mlp_loop_reserves_close_to_its_peak():
    alloc, dev = make()
    peak_live = replay(alloc, mlp_trace())
    s = alloc.stats()
    assert s["reserved_bytes"] == dev.used
    # Any allocator needs the peak of live bytes; the target is 1.5x PyTorch's reserved bytes, so
    # 1.5x that floor is the stricter bound. One free list per exact size reserved 2.6x here (444 mallocs).
    assert s["reserved_bytes"] <= 1.5 * peak_live, (s, peak_live)
    assert s["num_cuda_malloc"] <= 40 and s["num_cuda_free"] == 0
