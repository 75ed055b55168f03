"""Public CUDA API: availability, synchronisation, memory statistics, and CUDA graphs (``keydnn.cuda.graphs``)."""

from keydnn.cuda import graphs
from keydnn.cuda.graphs import CUDAGraph, GraphedStep, graph, make_graphed_step
from keydnn.infrastructure.backends.cuda import (
    device_count,
    empty_cache,
    is_available,
    memory_stats,
    synchronize,
    unavailable_reason,
)

__all__ = ["CUDAGraph", "GraphedStep", "device_count", "empty_cache", "graph", "graphs", "is_available",
           "make_graphed_step", "memory_stats", "synchronize", "unavailable_reason"]
