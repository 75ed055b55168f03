"""Every registered op on CUDA: forward and gradients against the CPU (both dtypes), float64 gradient checks
on the GPU, error inputs, and proof that the CUDA kernels ran (device storage, never a host fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.domain.errors import KeyDNNError
from tests.conftest import spec_params
from tests.opcheck import analytic_grads, assert_close, directional_check, run

pytestmark = pytest.mark.cuda
CUDA = "cuda:0"


@pytest.fixture(autouse=True)
def _need_cuda(kt):  # conftest's kt: skips without a GPU, fails instead under KEYDNN_REQUIRE_CUDA=1
    return kt


def _on_device(t) -> None:
    from keydnn.infrastructure.backends.cuda.storage import CudaArray
    assert str(t.device).startswith("cuda") and isinstance(t.data, CudaArray), "ran outside the CUDA backend"


@pytest.mark.parametrize("spec,dtype", spec_params())
def test_cuda_matches_cpu(spec, dtype, rng):
    for sample in spec.samples(np.dtype(dtype), rng):
        weight = np.random.default_rng(3).standard_normal(np.shape(run(spec, sample, dtype)[1].to_numpy()))
        if spec.differentiable:
            cpu_out, cpu_grads = analytic_grads(spec, sample, dtype, weight)
            gpu_out, gpu_grads = analytic_grads(spec, sample, dtype, weight, device=CUDA)
        else:
            (cpu_out, cpu_grads), (gpu_out, gpu_grads) = (run(spec, sample, dtype)[1], []), (
                run(spec, sample, dtype, CUDA)[1], [])
        _on_device(gpu_out)
        assert_close(gpu_out.to_numpy(), cpu_out.to_numpy(), spec, dtype, f"cuda forward[{sample.label}]")
        for g_gpu, g_cpu in zip(gpu_grads, cpu_grads):
            assert_close(g_gpu, g_cpu, spec, dtype, f"cuda grad[{sample.label}]")


@pytest.mark.parametrize("spec,dtype", spec_params())
def test_cuda_input_gradients_stay_on_device(spec, dtype, rng):
    if not spec.differentiable:
        pytest.skip("not differentiable")
    sample = spec.samples(np.dtype(dtype), rng)[0]
    inputs, out = run(spec, sample, dtype, CUDA, requires_grad=True)
    out.sum().backward()
    for t in inputs:
        if getattr(t, "requires_grad", False):
            _on_device(t.grad)


@pytest.mark.parametrize("spec", spec_params(lambda s: s.differentiable and "float64" in s.dtypes, False))
def test_cuda_gradient_matches_finite_differences(spec, rng):
    for sample in spec.samples(np.dtype("float64"), rng):
        directional_check(spec, sample, rng, device=CUDA)


@pytest.mark.parametrize("spec", spec_params(lambda s: s.errors is not None, False))
def test_cuda_bad_input_raises_keydnn_error(spec):
    # Raised by the call, or, for what only a kernel can see (a label out of range), by the first read-back.
    for case in spec.errors():
        with pytest.raises(case.error, match=case.match) as info:
            _, out = run(spec, case.sample, spec.dtypes[0], CUDA)
            out.to_numpy()
        assert isinstance(info.value, KeyDNNError)
