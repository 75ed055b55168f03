"""Registry entries for softmax, log-softmax and the softmax cross-entropy loss."""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.ops import activation as act
from keydnn.infrastructure.ops import loss as ls
from keydnn.infrastructure.registry import ErrorSample, OpSpec, Sample, rand, register


def _softmax_ref(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _axis_samples(dtype, rng):
    return [Sample((rand(rng, 4, 5, low=-5, high=5),), {"axis": -1}),
            Sample((rand(rng, 3, 4, 2),), {"axis": 1}),
            Sample((rand(rng, 2, 6) * 40,), {"axis": -1}, label="large_logits")]


register(OpSpec("softmax", "activation", lambda a, axis=-1: act.softmax(a, axis), _softmax_ref, _axis_samples,
                torch_fn=lambda a, axis=-1: a.softmax(axis),
                bench=lambda dt, rng: Sample((rng.random((256, 1000)),), {"axis": -1})))
register(OpSpec("log_softmax", "activation", lambda a, axis=-1: act.log_softmax(a, axis),
                lambda a, axis=-1: np.log(_softmax_ref(a, axis)), _axis_samples,
                torch_fn=lambda a, axis=-1: a.log_softmax(axis),
                bench=lambda dt, rng: Sample((rng.random((256, 1000)),), {"axis": -1})))


def _xent_ref(logits, labels):
    return -np.log(_softmax_ref(logits, 1))[np.arange(len(labels)), labels]


def _xent_samples(dtype, rng):
    return [Sample((rand(rng, 6, 4, low=-3, high=3), rng.integers(0, 4, 6))),
            Sample((rand(rng, 3, 10) * 30, rng.integers(0, 10, 3)), label="large_logits")]


def _xent_torch(logits, labels):
    import torch
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")


register(OpSpec("softmax_cross_entropy", "loss", ls.softmax_cross_entropy, _xent_ref, _xent_samples,
                torch_fn=_xent_torch,
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)), np.array([0, 3]))), ShapeError, "labels"),
                                ErrorSample(Sample((np.ones((2, 3)), np.array([0.0, 1.0]))), DTypeError, "int64")],
                bench=lambda dt, rng: Sample((rng.random((512, 100)), rng.integers(0, 100, 512)))))
