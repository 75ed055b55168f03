"""``Model.fit(..., cuda_graph=True)``: each training step of a full batch is one CUDA graph replay (here
beside graphs.py, not in nn/: it is CUDA's alone).

The first batch is an ordinary eager step on tensors kept as the graph's static inputs (the warm-up: it
makes optimizer state and cuDNN plans), run on the capture stream; the next step is then captured once.
Every later batch of the same shapes and dtypes is copied into the static inputs and replayed. A batch of
other shapes (the last, partial batch of an epoch; batches of an iterable that vary) runs as an eager step
on the same model and optimizer, so nothing is dropped or padded and the numbers are eager fit's.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ArgumentError
from keydnn.infrastructure.tensor._tensor import Tensor

from . import graphs


class GraphedTrainStep:
    """The step fit calls per batch when ``cuda_graph=True``; returns the same logs as an eager step."""

    def __init__(self, model: Any, loss_fn: Any, optimizer: Any, named: list) -> None:
        ref = model._reference()
        if ref is None or not ref.device.is_cuda():
            where = "no parameters" if ref is None else f"parameters on {ref.device}"
            raise ArgumentError("Model.fit", f"cuda_graph=True needs a model on a CUDA device (it has {where}); "
                                "move it first, e.g. model.to('cuda:0')")
        if optimizer is None:
            raise ArgumentError("Model.fit", "cuda_graph=True needs an optimizer (it captures the whole step)")
        self.model, self.loss_fn, self.optimizer, self.named = model, loss_fn, optimizer, named
        self.device = int(ref.device.index or 0)
        self.graph: Any = None
        self.static: tuple[Tensor, Tensor] | None = None
        self.outputs: tuple[Tensor, Tensor] | None = None

    def _eager(self, xb: Tensor, yb: Tensor) -> dict[str, float]:
        return self.model._train_step(xb, yb, self.loss_fn, self.optimizer, self.named)

    def _step(self) -> tuple[Tensor, Tensor]:
        x, y = self.static
        self.optimizer.zero_grad()
        pred = self.model(x)
        loss = self.loss_fn(pred, y)
        loss.backward()
        self.optimizer.step()
        return loss, pred

    def _logs(self, loss: Tensor, pred: Tensor, y: Tensor) -> dict[str, float]:
        logs = {"loss": float(loss.item())}
        if self.named:
            logs.update(self.model._apply_metrics(self.named, y, pred.detach()))
        return logs

    def __call__(self, x: Any, y: Any) -> dict[str, float]:
        xb, yb = self.model._as_input(x), self.model._as_target(y)
        if self.static is None:  # copies: the caller's own tensors must not be overwritten by later batches
            self.static = tuple(Tensor.zeros(t.shape, device=t.device, dtype=t.dtype) for t in (xb, yb))
            for static, t in zip(self.static, (xb, yb), strict=True):
                static.copy_from(t)
            with graphs.use_stream(self.device):
                logs = self._eager(*self.static)
            self.graph = graphs.CUDAGraph(self.device)
            with self.graph.capture():
                self.outputs = self._step()
            return logs
        sx, sy = self.static
        if (xb.shape, xb.dtype, yb.shape, yb.dtype) != (sx.shape, sx.dtype, sy.shape, sy.dtype):
            return self._eager(xb, yb)
        sx.copy_from(xb)
        sy.copy_from(yb)
        self.graph.replay()
        loss, pred = self.outputs
        return self._logs(loss, pred, sy)

    def close(self) -> None:
        """Destroy the graph (its pool goes as the tensors it made die)."""
        if self.graph is not None:
            self.graph.reset()
            self.graph = None
        self.static = self.outputs = None
