"""CUDA graphs: capture a whole training step once and replay it with one launch.

    g = CUDAGraph()
    with g.capture():
        loss = step(x_static, y_static)   # records the kernels; runs nothing
    x_static.copy_from_numpy(next_batch)  # new data goes into the static inputs, outside the capture
    g.replay()                            # runs the recorded step; loss now holds its value

``make_graphed_step(fn, *static_inputs)`` does the usual sequence: warm-up steps run eagerly on the capture
stream (so cuBLAS workspaces, cuDNN plans and optimizer state are made outside the capture), then one
capture, and returns a callable that replays it.

What a capture fixes: shapes, dtypes, every address (inputs and outputs are the tensors the capture saw,
so copy new batches into them: ``Tensor.copy_from_numpy`` / ``Tensor.copy_from``; the memory of every tensor
live when the capture began stays reserved for the graph until it is reset, even if the tensor dies, since a
replay may still read or write it: allocator.py) and every hyper-parameter
passed to a kernel (a learning rate changed later does not reach the graph). Host state a step changes is
redone per replay through ``keydnn.infrastructure.capture`` hooks (Adam's step count and bias corrections,
fault-check tickets). A read-back, a host-to-device copy, a synchronisation or a random draw inside the
capture raises GraphCaptureError, and the capture is abandoned cleanly.

The capture runs on a non-blocking stream of KeyDNN's own in cudaStreamCaptureModeRelaxed: the private pool
may need new segments mid-capture and cuBLAS may allocate its workspace, and cudaMalloc is a call the
stricter modes forbid; the calls the strict modes exist to catch (a synchronising copy, a device-wide
synchronise) are refused by KeyDNN's own wrappers (_cudart) before they reach the driver. Replays launch on
the legacy default stream, so they are ordered with eager work as every other KeyDNN op is. One graph is
captured at a time, from one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from keydnn.domain.errors import GraphCaptureError, KeyDNNError
from keydnn.infrastructure import capture as _capture

from . import _cudart, _lib, allocator

_streams: dict[int, int] = {}  # device -> KeyDNN's capture stream there (created once, kept for the process)


def capture_stream(device: int) -> int:
    """The non-blocking stream warm-ups and captures on ``device`` run on."""
    s = _streams.get(device)
    if s is None:
        _cudart.set_device(device)
        s = _streams[device] = _cudart.stream_create()
    return s


def _set_stream(stream: int, device: int) -> None:
    """Make ``stream`` (of ``device``) KeyDNN's current stream: the native library's launches, the device's
    cuBLAS/cuDNN handles' work, and _cudart's copies all go to it."""
    if stream == _cudart.stream:
        return
    from . import _cudnn, blas

    _lib.check(_lib.lib.kd_set_stream(stream or None), "set_stream")
    _cudart.stream = stream
    blas.set_stream(stream, device)
    if _cudnn._handles:
        _cudnn.set_stream(stream, device)


@contextmanager
def use_stream(device: int) -> Iterator[int]:
    """Run KeyDNN's work on ``device``'s capture stream inside the block, ordered after all earlier work and
    finished before the block ends (both ends synchronise: this is for warm-up and capture, not hot loops)."""
    if _cudart.stream:
        raise GraphCaptureError("use_stream", "already running on the capture stream (nested warm-up or capture)")
    stream = capture_stream(device)
    _cudart.synchronize()  # the stream does not wait on the legacy default stream by itself
    _set_stream(stream, device)
    try:
        yield stream
    finally:
        _set_stream(0, device)
        if not _cudart.capturing:
            _cudart.stream_synchronize(stream)


class CUDAGraph:
    """One captured sequence of device work on cuda:``device``, with its private memory pool."""

    def __init__(self, device: int = 0) -> None:
        from . import _require, blas, table

        _require("CUDAGraph", device)
        table(device)  # the device's one-time setup (fault record) happens before, never inside, a capture
        blas.prepare(device)  # and so does cuBLAS's handle (cuDNN's is made by the first convolution)
        self.device = device
        self.replays = 0
        self._graph = self._exec = 0
        self._pool: allocator.GraphPool | None = None
        self._hooks: list[_capture.ReplayHook] = []

    @property
    def captured(self) -> bool:
        return bool(self._exec)

    @contextmanager
    def capture(self) -> Iterator[CUDAGraph]:
        """Record the device work issued inside the block (nothing runs). On an error inside the block the
        capture is abandoned, the stream and allocator are restored, and the error propagates."""
        op = "CUDAGraph.capture"
        if self._exec or self._pool is not None:
            raise GraphCaptureError(op, "this graph already holds a capture; call reset() first")
        if _cudart.capturing:
            raise GraphCaptureError(op, f"{_cudart.capturing} is already being captured")
        alloc = allocator.allocator(self.device)
        _cudart.set_device(self.device)
        with use_stream(self.device) as stream:
            pool = self._pool = allocator.GraphPool()
            hooks: list[_capture.ReplayHook] = []
            alloc.begin_capture(pool)
            _capture.begin(hooks)
            _cudart.capturing = f"CUDAGraph on cuda:{self.device}"
            graph = 0
            try:
                _cudart.begin_capture(stream)
                try:
                    yield self
                finally:
                    status, graph = _cudart.end_capture(stream)
                _cudart.check(status, "cudaStreamEndCapture")
                self._exec = _cudart.graph_instantiate(graph)
                self._graph, self._hooks = graph, hooks
            except BaseException:
                if graph and not self._exec:
                    try:
                        _cudart.graph_destroy(graph, 0)
                    except KeyDNNError:  # the error being raised is the one worth reporting
                        pass
                raise
            finally:
                _cudart.capturing = ""
                _capture.end()
                alloc.end_capture()
                if not self._exec:  # nothing to replay: the pool's memory may go (after the stream drains)
                    _cudart.stream_synchronize(stream)
                    self._pool = None
                    alloc.release_graph_pool(pool)

    def replay(self) -> None:
        """Run the captured work once more, after the hooks have brought its per-step inputs up to date."""
        if not self._exec:
            raise GraphCaptureError("CUDAGraph.replay", "nothing captured (capture() first, or it was reset)")
        _cudart.set_device(self.device)
        for hook in self._hooks:
            hook(self.replays)
        _cudart.graph_launch(self._exec, _cudart.stream)
        self.replays += 1

    def reset(self) -> None:
        """Destroy the graph and hand its pool back (its memory is freed as its last tensors die)."""
        if self._exec or self._graph:
            _cudart.set_device(self.device)
            _cudart.synchronize()  # no replay may still be running on the pool's memory
            _cudart.graph_destroy(self._graph, self._exec)
            self._graph = self._exec = 0
        if self._pool is not None:
            pool, self._pool = self._pool, None
            allocator.allocator(self.device).release_graph_pool(pool)
        self._hooks = []
        self.replays = 0

    def __del__(self) -> None:
        try:
            if (self._exec or self._pool is not None) and _cudart.is_available() and not _cudart.capturing:
                self.reset()
        except Exception:  # interpreter shutdown: the driver reclaims everything anyway
            pass


def graph(cuda_graph: CUDAGraph):
    """``with keydnn.cuda.graph(g): ...`` captures into ``g``: ``g.capture()``, spelled as torch.cuda.graph."""
    if not isinstance(cuda_graph, CUDAGraph):
        raise GraphCaptureError("graph", f"expected a CUDAGraph, got {type(cuda_graph).__name__}")
    return cuda_graph.capture()


class GraphedStep:
    """A step captured once: calling it replays the graph and returns the captured step's outputs (the same
    tensors every time, holding the latest replay's values). It holds the captured callable, and with it
    whatever that closes over (model, optimizer, data), as long as the graph may replay their memory."""

    def __init__(self, graph: CUDAGraph, outputs: Any, static_inputs: tuple,
                 fn: Callable[..., Any] | None = None) -> None:
        self.graph, self.outputs, self.static_inputs, self.fn = graph, outputs, static_inputs, fn

    def __call__(self) -> Any:
        self.graph.replay()
        return self.outputs

    def reset(self) -> None:
        self.graph.reset()


def _device_of(static_inputs: tuple) -> int:
    """The device of the first CUDA tensor among the inputs, else the current device (a closure over its
    tensors, such as keydnn.bench's training_step, takes no inputs)."""
    for t in static_inputs:
        dev = getattr(t, "device", None)
        if dev is not None and hasattr(dev, "is_cuda") and dev.is_cuda():
            return int(dev.index or 0)
    return max(_cudart.current_device, 0)


def make_graphed_step(fn: Callable[..., Any], *static_inputs: Any, warmup: int = 1,
                      device: int | None = None) -> GraphedStep:
    """Run ``fn(*static_inputs)`` ``warmup`` times eagerly (real steps: a training step trains), capture one
    call, and return a GraphedStep whose every call is one more ``fn(*static_inputs)`` by replay.

    ``warmup`` >= 1 when ``fn`` creates state lazily at its first call (optimizer moments, cuDNN plans, layer
    parameters); feed new data by copying into ``static_inputs`` (or the tensors ``fn`` closes over) between
    calls. The device is the first CUDA input's, else ``device``, else the current one.
    """
    if warmup < 0:
        raise GraphCaptureError("make_graphed_step", f"warmup must be >= 0, got {warmup}")
    dev = _device_of(static_inputs) if device is None else device
    if warmup:
        with use_stream(dev):
            for _ in range(warmup):
                fn(*static_inputs)
    g = CUDAGraph(dev)
    with g.capture():
        outputs = fn(*static_inputs)
    return GraphedStep(g, outputs, static_inputs, fn)
