"""Model: a Module with a training loop (train_on_batch, fit with mini-batches, validation, metrics and a
progress bar), inference (predict, evaluate) and JSON checkpoints; History records per-epoch logs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keydnn.domain.errors import ArgumentError, DTypeError, ShapeError
from keydnn.infrastructure import losses as _losses  # module import: losses itself imports nn.module
from keydnn.infrastructure.autograd import no_grad
from keydnn.infrastructure.metrics import get_metric, metric_name
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.tensor._tensor import Tensor, next_seed


@dataclass
class History:
    """Per-epoch logs: ``history["loss"][i]`` is epoch ``epoch[i]``'s mean training loss."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def append_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def last(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.history.items() if v}

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]


class _Progress:
    """One bar per epoch: tqdm when installed, else a plain text line at the end of the epoch."""

    def __init__(self, verbose: int, epoch: int, epochs: int, total: int | None) -> None:
        self.verbose, self.start = verbose, time.perf_counter()
        self.prefix = f"Epoch {epoch}/{epochs}"
        self.bar = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=self.prefix, unit="batch", leave=True)
            except ImportError:
                pass

    def update(self, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def close(self, logs: dict[str, float], seen: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            self.bar.close()
        elif self.verbose:
            items = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"{self.prefix} - {items} - seen: {seen} - {time.perf_counter() - self.start:.2f}s",
                  flush=True)


class _Averager:
    """Means weighted by batch size, so a short last batch counts for what it is."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.seen = 0

    def add(self, logs: dict[str, float], n: int) -> None:
        self.seen += n
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * n

    def means(self) -> dict[str, float]:
        return {k: s / max(self.seen, 1) for k, s in self.sums.items()}


def _as_samples(op: str, data: Any) -> Any:
    """Tensors and ndarrays as they are; lists and other array-likes as ndarrays (they cannot be indexed by
    a batch of sample indices)."""
    if isinstance(data, (Tensor, np.ndarray)):
        return data
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as e:
        raise ShapeError(op, f"x and y must be Tensors, ndarrays or array-likes of equal-shaped samples ({e})") \
            from None
    if arr.dtype.kind not in "biuf" or arr.ndim == 0:
        raise DTypeError(op, f"x and y must be Tensors, ndarrays or numeric array-likes with a sample axis, got "
                         f"{type(data).__name__}" + (f" of {arr.dtype}" if arr.ndim else " (a scalar)"))
    return arr


def _count(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ArgumentError("Model.fit", f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _verbose(value: Any) -> int:
    """Keras's verbose: 0 silent, 1 a progress bar, 2 a line per epoch; 'auto' and booleans as 1 / 0."""
    if value == "auto":
        return 1
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if not isinstance(value, (int, np.integer)) or value not in (0, 1, 2):
        raise ArgumentError("Model.fit", f"verbose must be 0 (silent), 1 (progress bar), 2 (a line per "
                            f"epoch) or 'auto', got {value!r}")
    return int(value)


class Model(Module):
    """A Module that can be trained and evaluated: Keras-style ``fit``/``evaluate``/``predict``."""

    # ---- data plumbing -------------------------------------------------------------------------------
    def _reference(self) -> Any:
        return next(self.parameters(), None)

    def _as_input(self, x: Any) -> Tensor:
        """ndarrays become Tensors on the model's device; float arrays take the model's float dtype."""
        if isinstance(x, Tensor):
            return x
        arr = np.asarray(x)
        ref = self._reference()
        device = ref.device if ref is not None else None
        dtype = ref.dtype if ref is not None and arr.dtype.kind == "f" else None
        return Tensor(data=arr, dtype=dtype, device=device)

    def _as_target(self, y: Any) -> Tensor:
        if isinstance(y, Tensor):
            return y
        arr = np.asarray(y)
        ref = self._reference()
        dtype = ref.dtype if ref is not None and arr.dtype.kind == "f" else None
        return Tensor(data=arr, dtype=dtype, device=ref.device if ref is not None else None)

    @staticmethod
    def _metrics(metrics: Sequence[Any] | None, names: Sequence[str] | None) -> list[tuple[str, Any]]:
        metrics = list(metrics or [])
        if names is not None and len(names) != len(metrics):
            raise ArgumentError("Model", f"metric_names has {len(names)} names for {len(metrics)} metrics")
        return [(names[i] if names is not None else metric_name(m, i), get_metric(m))
                for i, m in enumerate(metrics)]

    @staticmethod
    def _apply_metrics(metrics: list[tuple[str, Any]], y: Any, pred: Tensor) -> dict[str, float]:
        out = {}
        for name, fn in metrics:
            try:
                out[name] = float(fn(y, pred))
            except TypeError:  # the seed retried metrics written as metric(pred, true)
                out[name] = float(fn(pred, y))
        return out

    # ---- inference -----------------------------------------------------------------------------------
    def predict(self, x: Any, batch_size: int | None = None, *, requires_grad: bool = False) -> Tensor:
        """Forward pass in eval mode, under no_grad unless ``requires_grad``; in batches if asked."""
        was_training = self.training
        self.eval()
        try:
            if requires_grad:
                return self(self._as_input(x))
            with no_grad():
                if batch_size is None or len(x) <= batch_size:
                    return self(self._as_input(x))
                outs = [self(self._as_input(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
                return Tensor.concat(outs, axis=0)
        finally:
            self.train(was_training)

    def evaluate(self, x: Any, y: Any, loss: Any = None, metrics: Sequence[Any] | None = None, *,
                 metric_names: Sequence[str] | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """Mean loss (when given) and metrics over (x, y), in eval mode without a graph."""
        if loss is None and not metrics:
            raise ArgumentError("Model.evaluate", "nothing to compute: give a loss (e.g. loss='mse') and/or "
                                "metrics (e.g. metrics=['accuracy'])")
        loss_fn = _losses.get_loss(loss) if loss is not None else None
        named = self._metrics(metrics, metric_names)
        x, y = _as_samples("Model.evaluate", x), _as_samples("Model.evaluate", y)
        n = len(x)
        if len(y) != n:
            raise ShapeError("Model.evaluate", f"x has {n} samples but y has {len(y)}")
        step = batch_size or n
        avg = _Averager()
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for i in range(0, n, step):
                    xb, yb = self._as_input(x[i:i + step]), self._as_target(y[i:i + step])
                    pred = self(xb)
                    logs = {"loss": float(loss_fn(pred, yb).item())} if loss_fn is not None else {}
                    logs.update(self._apply_metrics(named, yb, pred))
                    avg.add(logs, xb.shape[0])
        finally:
            self.train(was_training)
        return avg.means()

    # ---- training ------------------------------------------------------------------------------------
    def train_on_batch(self, x_batch: Any, y_batch: Any, *, loss: Any, optimizer: Any,
                       metrics: Sequence[Any] | None = None, metric_names: Sequence[str] | None = None,
                       zero_grad: bool = True, backward: bool = True, step: bool = True) -> dict[str, float]:
        """One optimisation step: zero grads, forward, loss, backward, optimizer step. Returns the logs."""
        return self._train_step(x_batch, y_batch, _losses.get_loss(loss), optimizer,
                                self._metrics(metrics, metric_names), zero_grad, backward, step)

    def _train_step(self, x: Any, y: Any, loss_fn: Any, optimizer: Any, named: list, zero_grad: bool = True,
                    backward: bool = True, step: bool = True) -> dict[str, float]:
        if zero_grad:
            (optimizer.zero_grad if optimizer is not None else self.zero_grad)()
        xb, yb = self._as_input(x), self._as_target(y)
        pred = self(xb)
        value = loss_fn(pred, yb)
        if backward:
            if not hasattr(value, "backward"):
                raise TypeError(f"the loss returned {type(value).__name__}, which has no backward()")
            value.backward()
        if step and optimizer is not None:
            optimizer.step()
        logs = {"loss": float(value.item())}
        if named:
            logs.update(self._apply_metrics(named, yb, pred.detach()))
        return logs

    def fit(self, x: Any, y: Any = None, *, loss: Any, optimizer: Any, metrics: Sequence[Any] | None = None,
            metric_names: Sequence[str] | None = None, batch_size: int = 32, epochs: int = 1,
            shuffle: bool = True, validation_data: tuple[Any, Any] | None = None, verbose: int = 1,
            seed: int | None = None, cuda_graph: bool = False) -> History:
        """Train for ``epochs`` over mini-batches of (x, y) (Tensors, ndarrays or array-likes such as lists), or
        over an iterable of
        (x_batch, y_batch) pairs when y is None. Shuffling draws from ``seed`` (default: KeyDNN's seeded
        stream, see ``keydnn.manual_seed``). ``verbose``: 0 silent, 1 a bar per epoch, 2 a line per epoch.
        ``cuda_graph=True`` (a model on CUDA) captures the training step once and replays it for every batch
        of the first batch's shape; other batches (the last, partial one) run eagerly (backends/cuda/graphed_fit.py)."""
        epochs, batch_size = _count("epochs", epochs), _count("batch_size", batch_size)
        verbose = _verbose(verbose)
        loss_fn, named = _losses.get_loss(loss), self._metrics(metrics, metric_names)
        if cuda_graph:
            from keydnn.infrastructure.backends.cuda.graphed_fit import GraphedTrainStep

            graphed = GraphedTrainStep(self, loss_fn, optimizer, named)
            try:
                return self._fit(x, y, graphed, batch_size, epochs, shuffle, validation_data, verbose, seed,
                                 loss_fn, named)
            finally:
                graphed.close()
        step = lambda xb, yb: self._train_step(xb, yb, loss_fn, optimizer, named)  # noqa: E731
        return self._fit(x, y, step, batch_size, epochs, shuffle, validation_data, verbose, seed, loss_fn, named)

    def _fit(self, x: Any, y: Any, train_step: Any, batch_size: int, epochs: int, shuffle: bool,
             validation_data: tuple[Any, Any] | None, verbose: int, seed: int | None, loss_fn: Any,
             named: list) -> History:
        batches = self._batch_source(x, y, int(batch_size), shuffle, seed, int(epochs))
        history = History()
        for epoch in range(1, int(epochs) + 1):
            self.train()
            avg = _Averager()
            epoch_batches = batches()
            total = getattr(epoch_batches, "total", None)
            if total is None and hasattr(epoch_batches, "__len__"):
                total = len(epoch_batches)
            progress = _Progress(int(verbose), epoch, int(epochs), total)
            for xb, yb in epoch_batches:
                logs = train_step(xb, yb)
                avg.add(logs, len(xb))
                progress.update(avg.means())  # running epoch means, not the last batch's noise
            logs = avg.means()
            if validation_data is not None:
                xv, yv = validation_data
                val = self.evaluate(xv, yv, loss_fn, [m for _, m in named],
                                    metric_names=[n for n, _ in named], batch_size=max(int(batch_size), 256))
                logs.update({f"val_{k}": v for k, v in val.items()})
            progress.close(logs, avg.seen)
            history.append_epoch(epoch, logs)
        return history

    def _batch_source(self, x: Any, y: Any, batch_size: int, shuffle: bool, seed: int | None, epochs: int):
        if y is None:
            if not isinstance(x, Iterable):
                raise TypeError("Model.fit: with y=None, x must be a re-iterable of (x_batch, y_batch) pairs")
            if iter(x) is x and epochs > 1:
                raise TypeError("Model.fit: x is a one-shot iterator (e.g. a generator) but epochs > 1; "
                                "pass a re-iterable such as a list of (x_batch, y_batch) pairs")
            return lambda: x
        x, y = _as_samples("Model.fit", x), _as_samples("Model.fit", y)
        n = len(x)
        if len(y) != n:
            raise ShapeError("Model.fit", f"x has {n} samples but y has {len(y)}")
        rng = np.random.default_rng(seed if seed is not None else next_seed())

        class _Epoch:
            total = (n + batch_size - 1) // batch_size

            def __iter__(self):
                order = rng.permutation(n) if shuffle else None
                for i in range(0, n, batch_size):
                    if order is None:
                        yield x[i:i + batch_size], y[i:i + batch_size]
                    else:
                        idx = order[i:i + batch_size]
                        yield x[idx], y[idx]
        return _Epoch

    # ---- checkpoints ---------------------------------------------------------------------------------
    def save_json(self, path: str) -> None:
        """Write architecture and state as a ``keydnn.json.ckpt.v1`` JSON checkpoint."""
        from keydnn.infrastructure.serialization import save_json
        save_json(self, path)

    @classmethod
    def load_json(cls, path: str, *, device: Any = None) -> Model:
        """Rebuild a model from a JSON checkpoint; TypeError if it is not an instance of ``cls``."""
        from keydnn.infrastructure.serialization import load_json
        model = load_json(path, device=device)
        if not isinstance(model, cls):
            raise TypeError(f"{cls.__name__}.load_json: the checkpoint holds a {type(model).__name__}")
        return model

    def load_weights_json(self, path: str, *, strict: bool = True) -> None:
        """Load a checkpoint's state into this model; a mismatch raises and leaves the model untouched."""
        from keydnn.infrastructure.serialization import load_json_into
        load_json_into(self, path, strict=strict)
