"""Every registered op: forward against its NumPy reference, float64 gradient check, PyTorch parity (when
installed), error inputs that must raise KeyDNN errors, and native-vs-NumPy CPU parity."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.domain.errors import KeyDNNError
from keydnn.infrastructure.backends import native_table, use_cpu_backend
from keydnn.infrastructure.registry import reference, to_inputs
from tests.conftest import spec_params
from tests.opcheck import analytic_grads, assert_close, directional_check, float_positions, run


@pytest.mark.parametrize("spec,dtype", spec_params())
def test_forward_matches_numpy_reference(spec, dtype, rng):
    for sample in spec.samples(np.dtype(dtype), rng):
        _, out = run(spec, sample, dtype)
        expected = reference(spec, sample)
        assert_close(out.to_numpy(), expected, spec, dtype, f"forward[{sample.label}]")
        if spec.differentiable and expected.dtype.kind == "f":
            assert out.dtype == np.dtype(dtype) or spec.name.startswith("astype"), f"{spec.name} changed dtype"


@pytest.mark.parametrize("spec", spec_params(lambda s: s.differentiable and "float64" in s.dtypes, False))
def test_gradient_matches_finite_differences(spec, rng):
    for sample in spec.samples(np.dtype("float64"), rng):
        directional_check(spec, sample, rng)


@pytest.mark.parametrize("spec,dtype", spec_params(lambda s: s.torch_fn is not None))
def test_matches_torch(spec, dtype, rng):
    torch = pytest.importorskip("torch")
    for sample in spec.samples(np.dtype(dtype), rng):
        positions = float_positions(sample)
        t_args = [torch.tensor(a.astype(dtype), requires_grad=spec.differentiable) if i in positions
                  else torch.tensor(a) if isinstance(a, np.ndarray) else a for i, a in enumerate(sample.args)]
        t_out = spec.torch_fn(*t_args, **sample.kwargs)
        weight = rng.standard_normal(tuple(t_out.shape))
        out, grads = analytic_grads(spec, sample, dtype, weight) if spec.differentiable else (
            run(spec, sample, dtype)[1], [])
        assert_close(out.to_numpy(), t_out.detach().numpy(), spec, dtype, f"forward vs torch[{sample.label}]")
        if spec.differentiable:
            (t_out * torch.tensor(weight).to(t_out.dtype)).sum().backward()
            for g, i in zip(grads, positions):
                assert_close(g, t_args[i].grad.numpy(), spec, dtype, f"grad #{i} vs torch[{sample.label}]")


@pytest.mark.parametrize("spec", spec_params(lambda s: s.errors is not None, False))
def test_bad_input_raises_keydnn_error(spec):
    for case in spec.errors():
        with pytest.raises(case.error, match=case.match) as info:
            run(spec, case.sample, spec.dtypes[0])
        assert isinstance(info.value, KeyDNNError)


@pytest.mark.parametrize("spec,dtype", spec_params())
def test_native_cpu_matches_numpy_backend(spec, dtype, rng):
    if native_table() is None:
        pytest.skip("native CPU library not built")
    for sample in spec.samples(np.dtype(dtype), rng):
        results = []
        for backend in ("numpy", "native"):
            with use_cpu_backend(backend):
                weight = np.random.default_rng(7).standard_normal(reference(spec, sample).shape)
                if spec.differentiable:
                    out, grads = analytic_grads(spec, sample, dtype, weight)
                else:
                    out, grads = run(spec, sample, dtype)[1], []
                results.append((out.to_numpy().copy(), [g.copy() for g in grads]))
        (o1, g1), (o2, g2) = results
        assert_close(o2, o1, spec, dtype, f"native forward[{sample.label}]")
        for a, b in zip(g2, g1):
            assert_close(a, b, spec, dtype, f"native grad[{sample.label}]")


def test_every_sample_builds_inputs(rng):
    for spec in spec_params(with_dtype=False):
        spec = spec.values[0]
        for sample in spec.samples(np.dtype("float32"), rng):
            assert to_inputs(sample, "float32")
