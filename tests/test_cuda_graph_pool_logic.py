"""A CUDA graph's private memory pool, on the CPU under the fake device of test_cuda_allocator_logic: what a
capture allocates comes from segments only the graph uses, blocks freed during the capture (its own and eager
ones) never reach eager code while the graph lives, and releasing the pool frees its segments and gives the
parked eager blocks back; the statistics add up after every step."""

from __future__ import annotations

from keydnn.infrastructure.backends.cuda.allocator import GraphPool
from tests.test_cuda_allocator_logic import make


def _balanced(alloc) -> None:
    s = alloc.stats()
    assert s["reserved_bytes"] == (s["allocated_bytes"] + s["cached_bytes"] + s["graph_cached_bytes"]
                                   + s["graph_parked_bytes"]), s


def test_capture_serves_from_private_segments_and_keeps_its_frees():
    alloc, dev = make()
    eager, _ = alloc.take(4096)
    pool = GraphPool()
    alloc.begin_capture(pool)
    a, _ = alloc.take(4096)
    b, _ = alloc.take(8 << 20)
    assert dev.mallocs == 3  # a new small segment and a large one for the graph, not the eager cache
    alloc.release(a, 4096)  # freed inside the capture: reusable by the same capture only
    again, _ = alloc.take(4096)
    assert again == a
    alloc.end_capture()
    _balanced(alloc)
    alloc.release(again, 4096)
    alloc.release(b, 8 << 20)
    fresh, _ = alloc.take(4096)  # eager code after the capture: never the graph's blocks
    assert fresh not in (a, b)
    assert alloc.stats()["graph_reserved_bytes"] == pool.reserved_bytes > 0
    _balanced(alloc)
    alloc.release(fresh, 4096)
    alloc.release(eager, 4096)


def test_eager_blocks_freed_during_capture_wait_for_the_graph():
    alloc, dev = make()
    eager, _ = alloc.take(4096)
    pool = GraphPool()
    alloc.begin_capture(pool)
    alloc.release(eager, 4096)  # the graph may have used it: parked, not cached
    alloc.end_capture()
    s = alloc.stats()
    assert s["graph_parked_bytes"] == 4096 and s["cached_bytes"] == 2 * 1024 * 1024 - 4096
    _balanced(alloc)
    other, _ = alloc.take(4096)
    assert other != eager
    alloc.release_graph_pool(pool)
    assert alloc.stats()["graph_parked_bytes"] == 0
    _balanced(alloc)
    alloc.release(other, 4096)
    alloc.empty_cache()
    assert dev.used == 0  # the parked block merged back into its segment, which could then go


def test_released_pool_frees_its_segments_once_its_last_block_dies():
    alloc, dev = make()
    pool = GraphPool()
    alloc.begin_capture(pool)
    out, _ = alloc.take(4096)  # a static output still held after the graph is destroyed
    tmp, _ = alloc.take(3 << 20)
    alloc.release(tmp, 3 << 20)
    alloc.end_capture()
    alloc.release_graph_pool(pool)  # the large segment is wholly free: gone now
    s = alloc.stats()
    assert s["graph_pools"] == 1 and s["graph_reserved_bytes"] == 2 << 20 and dev.used == 2 << 20
    _balanced(alloc)
    alloc.release(out, 4096)
    s = alloc.stats()
    assert s["graph_pools"] == 0 and s["reserved_bytes"] == 0 and dev.used == 0
    assert dev.frees == dev.mallocs == 2


def test_empty_cache_keeps_a_live_graphs_segments_and_does_nothing_mid_capture():
    alloc, dev = make()
    pool = GraphPool()
    alloc.begin_capture(pool)
    a, _ = alloc.take(4096)
    alloc.release(a, 4096)
    alloc.empty_cache()  # would cudaFree inside a capture: skipped
    alloc.end_capture()
    alloc.empty_cache()  # the graph still replays that segment's addresses
    assert dev.used == 2 << 20 and alloc.stats()["graph_cached_bytes"] == 2 << 20
    alloc.release_graph_pool(pool)
    assert dev.used == 0


def test_an_out_of_memory_during_capture_raises_without_freeing_the_cache():
    import pytest

    from keydnn.domain.errors import NativeLibraryError

    alloc, dev = make(capacity=4 << 20)
    cached, _ = alloc.take(2 << 20)
    alloc.release(cached, 2 << 20)  # an eager cached segment: empty_cache would free it, but not mid-capture
    pool = GraphPool()
    alloc.begin_capture(pool)
    with pytest.raises(NativeLibraryError):
        alloc.take(4 << 20)
    alloc.end_capture()
    assert dev.frees == 0 and alloc.stats()["num_oom_retries"] == 0
    alloc.release_graph_pool(pool)
    assert alloc.stats()["graph_pools"] == 0


def test_another_graphs_block_freed_during_a_capture_waits_for_that_capture_too():
    alloc, dev = make()
    first = GraphPool()
    alloc.begin_capture(first)
    out, _ = alloc.take(4096)  # graph 1's static output, fed to graph 2
    alloc.end_capture()
    alloc.release_graph_pool(first)  # graph 1 is gone; its output still lives
    second = GraphPool()
    alloc.begin_capture(second)
    alloc.release(out, 4096)  # graph 2 may have read it: no cudaFree now, not even at the end of the capture
    alloc.end_capture()
    assert alloc.stats()["graph_parked_bytes"] == 4096 and first.reserved_bytes == 2 << 20
    _balanced(alloc)
    alloc.release_graph_pool(second)
    assert first.reserved_bytes == 0 and dev.used == 0 and alloc.stats()["graph_pools"] == 0


def test_an_eager_block_live_at_capture_and_freed_after_it_is_never_handed_out_while_the_graph_lives():
    """The graph replays the addresses of the tensors it used (parameters, optimizer state, static inputs): a
    step's closure dying after its capture must not let eager code receive that memory."""
    alloc, dev = make()
    weights, _ = alloc.take(4096)
    pool = GraphPool()
    alloc.begin_capture(pool)
    alloc.end_capture()
    later, _ = alloc.take(4096)  # allocated after the capture: not the graph's
    alloc.release(weights, 4096)  # the model died; the graph still writes there on replay
    s = alloc.stats()
    assert s["graph_parked_bytes"] == 4096
    _balanced(alloc)
    got = {alloc.take(4096)[0] for _ in range(8)}
    assert weights not in got
    alloc.release(later, 4096)  # never pinned: cached and handed out again at once
    assert alloc.take(4096)[0] == later
    alloc.release_graph_pool(pool)
    assert alloc.stats()["graph_parked_bytes"] == 0
    _balanced(alloc)
    assert alloc.take(4096)[0] == weights  # free again once the graph is gone
    assert dev.frees == 0


def test_a_block_pinned_by_two_graphs_waits_for_both():
    alloc, _ = make()
    shared, _ = alloc.take(4096)
    first, second = GraphPool(), GraphPool()
    for pool in (first, second):
        alloc.begin_capture(pool)
        alloc.end_capture()
    alloc.release(shared, 4096)
    alloc.release_graph_pool(first)  # the second graph may still replay it
    assert alloc.stats()["graph_parked_bytes"] == 4096 and shared in {b.ptr for b in second.parked}
    assert alloc.take(4096)[0] != shared
    alloc.release_graph_pool(second)
    assert alloc.stats()["graph_parked_bytes"] == 0
    _balanced(alloc)


def test_a_block_freed_after_its_graph_is_gone_goes_straight_back_to_the_cache():
    alloc, _ = make()
    weights, _ = alloc.take(4096)
    pool = GraphPool()
    alloc.begin_capture(pool)
    alloc.end_capture()
    alloc.release_graph_pool(pool)
    alloc.release(weights, 4096)
    assert alloc.stats()["graph_parked_bytes"] == 0 and alloc.pinned == 0
    assert alloc.take(4096)[0] == weights
    _balanced(alloc)
