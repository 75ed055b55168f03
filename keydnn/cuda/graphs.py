"""CUDA graphs (re-export of keydnn/infrastructure/backends/cuda/graphs.py): capture a step once, replay it."""

from keydnn.infrastructure.backends.cuda.graphs import CUDAGraph, GraphedStep, graph, make_graphed_step

__all__ = ["CUDAGraph", "GraphedStep", "graph", "make_graphed_step"]
