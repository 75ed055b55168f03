"""asv benchmarks of whole workloads: training steps (the seed's MLP, LeNet and README CNN, an LSTM; MLP and
LeNet also replayed as CUDA graphs), the seed's Conv2d shape, one tiny op (dispatch overhead) and
``import keydnn``. Builders live in keydnn.bench."""

from __future__ import annotations

import itertools

from ._suite import _Timed, bench_module

_BACKENDS = ["numpy", "native", "cuda"]


def _use(backend: str):
    """(device, context) for a backend name: the CPU table forced for numpy/native, cuda:0 for cuda."""
    import contextlib

    from keydnn.infrastructure import backends

    if backend == "cuda":
        from keydnn.infrastructure.backends import cuda
        if not cuda.is_available():
            raise NotImplementedError(f"no CUDA: {cuda.unavailable_reason()}")
        return "cuda:0", contextlib.nullcontext(), cuda.synchronize
    if backend == "native" and backends.native_table() is None:
        raise NotImplementedError(f"native CPU library not loaded: {backends._Tables.native_error}")
    return "cpu", backends.use_cpu_backend(backend), None


def _builder(workload: str):
    if workload in ("mlp", "lenet"):
        return getattr(bench_module("workloads"), f"keydnn_{workload}_step")
    return getattr(bench_module("models"), {"seed_cnn": "keydnn_seed_cnn_step", "lstm": "keydnn_lstm_step"}[workload])


class _Stepped(_Timed):
    _ctx = None

    def _prepare(self, backend: str, make) -> None:
        device, ctx, self._sync = _use(backend)
        self._ctx = ctx
        self._ctx.__enter__()
        self._step = make(device)
        self._step()  # first call outside the timing: lazy table builds, allocator warm-up

    def teardown(self, *params) -> None:
        if self._ctx is not None:  # asv tears down after a skipped setup too
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def _run(self) -> None:
        self._step()
        if self._sync:
            self._sync()

    def _cuda_seconds(self) -> float:
        return bench_module("events").event_timing(self._step).median


class TrainingStep(_Stepped):
    """One optimizer step (forward, loss, backward, update) of a small model at batch 64 (LSTM: 32)."""

    params = [_BACKENDS, ["mlp", "lenet", "seed_cnn", "lstm"]]
    param_names = ["backend", "workload"]

    def setup(self, backend: str, workload: str) -> None:
        self._prepare(backend, _builder(workload))

    def time_step(self, backend: str, workload: str) -> None:
        self._run()

    def peakmem_step(self, backend: str, workload: str) -> None:
        self._step()

    def track_step_cuda_seconds(self, backend: str, workload: str) -> float:
        return self._cuda_seconds()

    peakmem_step.skip_params = [p for p in itertools.product(*params) if p[0] == "cuda"]
    track_step_cuda_seconds.skip_params = [p for p in itertools.product(*params) if p[0] != "cuda"]
    track_step_cuda_seconds.unit = "seconds"


class GraphedTrainingStep(_Stepped):
    """TrainingStep's MLP and LeNet steps replayed as one CUDA graph each (keydnn.cuda.make_graphed_step, one
    eager warm-up step, one capture): the host cost per op gone. CUDA only."""

    params = [["cuda"], ["mlp", "lenet"]]
    param_names = ["backend", "workload"]

    def setup(self, backend: str, workload: str) -> None:
        make = _builder(workload)

        def graphed(device: str):
            import keydnn.cuda

            return keydnn.cuda.make_graphed_step(make(device), warmup=1)
        self._prepare(backend, graphed)

    def teardown(self, *params) -> None:
        step = getattr(self, "_step", None)
        if step is not None and hasattr(step, "reset"):
            step.reset()  # the graph and its pool go before the next parameter set
        super().teardown(*params)

    def time_step(self, backend: str, workload: str) -> None:
        self._run()

    def track_step_cuda_seconds(self, backend: str, workload: str) -> float:
        return self._cuda_seconds()

    track_step_cuda_seconds.unit = "seconds"


class SeedConv2d(_Stepped):
    """The seed's Conv2d benchmark shape, forward only: 8x64x112x112 -> 128, 3x3, padding 1, float32."""

    params = [_BACKENDS]
    param_names = ["backend"]
    repeat = (2, 5, 10.0)  # a CPU forward takes about half a second
    rounds = 1

    def setup(self, backend: str) -> None:
        self._prepare(backend, bench_module("models").seed_conv_forward)

    def time_forward(self, backend: str) -> None:
        self._run()

    def track_forward_cuda_seconds(self, backend: str) -> float:
        return self._cuda_seconds()

    track_forward_cuda_seconds.skip_params = [("numpy",), ("native",)]
    track_forward_cuda_seconds.unit = "seconds"


class Dispatch(_Stepped):
    """100 ``a + b`` on one-element tensors: what a tiny op costs on KeyDNN's host path (checks, dispatch,
    graph). A loop inside the benchmark because asv times one call per sample when a class has a setup."""

    params = [["native", "cuda"]]
    param_names = ["backend"]

    def setup(self, backend: str) -> None:
        self._prepare(backend, bench_module("models").tiny_add)

    def time_100_tiny_adds(self, backend: str) -> None:
        step = self._step
        for _ in range(100):
            step()
        if self._sync:
            self._sync()


def timeraw_import_keydnn() -> tuple[str, str]:
    """Seconds for a fresh interpreter to ``import keydnn`` (the package, not the native libraries). The
    untimed setup puts ASV_PYTHONPATH on sys.path: asv gives it to the benchmark process, not to its child."""
    import os

    paths = [p for p in os.environ.get("ASV_PYTHONPATH", "").split(os.pathsep) if p]
    return "import keydnn", f"import sys; sys.path[:0] = {paths!r}"


timeraw_import_keydnn.repeat = (5, 10, 10.0)
