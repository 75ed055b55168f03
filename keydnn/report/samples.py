"""The inputs both processes of the report rebuild identically: registry samples under a seed derived from
(op, dtype), and the output weights that turn an op into a scalar for the gradient comparisons."""

from __future__ import annotations

import zlib

import numpy as np

from keydnn.infrastructure.registry import OpSpec, Sample, all_specs


def seed_for(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def samples_for(spec: OpSpec, dtype: str) -> list[Sample]:
    return spec.samples(np.dtype(dtype), np.random.default_rng(seed_for(spec.name, dtype)))


def weight_for(spec: OpSpec, dtype: str, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The weight w of the scalar sum(op(x) * w) whose gradient is compared for sample ``k``."""
    return np.random.default_rng(seed_for(spec.name, dtype, str(k), "w")).standard_normal(shape)


def float_positions(sample: Sample) -> list[int]:
    return [i for i, a in enumerate(sample.args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def spec_by_name() -> dict[str, OpSpec]:
    return {s.name: s for s in all_specs()}
