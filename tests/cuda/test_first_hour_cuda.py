"""Issue 8's first-hour fixes on cuda:0: the same behaviour as on the CPU (keydnn.tensor, rand/randn dtypes,
1-D dot, dim=, empty max, batch-norm and BCE checks, Keras losses, load_weights_json onto a CUDA model)."""

from __future__ import annotations

import numpy as np
import pytest

import keydnn
from keydnn import Tensor
from keydnn.domain.errors import ShapeError
from keydnn.infrastructure import losses as L
from keydnn.nn import BatchNorm1d, Linear, ReLU, Sequential

pytestmark = pytest.mark.cuda
DEV = "cuda:0"


@pytest.fixture(autouse=True)
def _need_cuda(kt):
    return kt


def test_tensor_factory_and_random_dtypes_on_cuda():
    t = keydnn.tensor([1.0, 2.0, 3.0], device=DEV, requires_grad=True)
    assert t.device == keydnn.Device(DEV) and t.dtype == np.float32
    n = t.numpy()  # a host copy: writing it cannot touch the device memory
    n[:] = 0
    assert t.tolist() == [1.0, 2.0, 3.0]
    for dtype in ("float32", "float64"):
        assert Tensor.rand((64,), DEV, dtype=dtype).dtype == np.dtype(dtype)
        assert Tensor.randn((64,), DEV, dtype=dtype).dtype == np.dtype(dtype)


def test_dot_dim_and_empty_max_on_cuda():
    v = keydnn.tensor([1.0, 2.0, 3.0], device=DEV, requires_grad=True)
    d = v @ v
    d.backward()
    assert d.shape == () and d.item() == 14.0 and v.grad.tolist() == [2.0, 4.0, 6.0]
    x = keydnn.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), device=DEV)
    assert x.sum(dim=0).tolist() == [3.0, 5.0, 7.0] and x.max(dim=1, keepdim=True).shape == (2, 1)
    with pytest.raises(ShapeError, match="empty axis"):
        Tensor.zeros((0, 3), DEV).max()


def test_batchnorm_and_bce_checks_on_cuda():
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        BatchNorm1d(8, device=DEV)(Tensor.randn((1, 8), DEV))
    with pytest.raises(ShapeError, match="probabilities in"):
        L.BCELoss()(keydnn.tensor([0.5, 1.5], device=DEV), keydnn.tensor([0.0, 1.0], device=DEV))


def test_keras_losses_match_the_cpu(rng):
    z = rng.standard_normal((6, 4)).astype(np.float32)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = np.array([0, 3, 1, 2, 2, 0])
    for loss, pred in ((L.get_loss("sparse_categorical_crossentropy"), p),
                       (L.SparseCategoricalCrossentropy(from_logits=True), z)):
        cpu = loss(Tensor.from_numpy(pred), labels).item()
        gpu = loss(Tensor.from_numpy(pred, device=DEV), Tensor.from_numpy(labels, device=DEV)).item()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5)


def test_load_weights_json_onto_a_cuda_model(tmp_path):
    cpu = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    cpu.save_json(tmp_path / "m.json")
    gpu = Sequential(Linear(3, 4, device=DEV), ReLU(), Linear(4, 2, device=DEV))
    gpu.load_weights_json(tmp_path / "m.json")
    np.testing.assert_array_equal(gpu[0].weight.to_numpy(), cpu[0].weight.to_numpy())
