"""Test configuration: the registry as parameters, and the optional torch oracle."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.infrastructure.registry import all_specs

SPECS = all_specs()


def spec_params(filter_fn=lambda s: True, with_dtype: bool = True):
    out = []
    for spec in SPECS:
        if not filter_fn(spec):
            continue
        if with_dtype:
            out += [pytest.param(spec, dt, id=f"{spec.name}-{dt}") for dt in spec.dtypes]
        else:
            out.append(pytest.param(spec, id=spec.name))
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
