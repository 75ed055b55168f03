"""keydnn.distributed on GPUs: NCCL through a one-rank communicator on any GPU machine; two ranks over NCCL
(equal to one GPU with the global batch) and peer copies where two GPUs are visible."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import keydnn.distributed as dist
from keydnn import Tensor
from keydnn.domain.errors import DistributedError

pytestmark = pytest.mark.cuda
ROOT = str(Path(__file__).resolve().parents[2])
WORKER = str(Path(ROOT) / "tests" / "distributed" / "_worker.py")


@pytest.fixture(autouse=True)
def _need_cuda(kt):
    return kt


@pytest.fixture
def nccl_group(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    g = dist.init_process_group("nccl")
    yield g
    dist.destroy_process_group()


def test_nccl_loads_and_reports_its_version():
    from keydnn.infrastructure.backends.cuda import _nccl
    major = int(_nccl.version().split(".")[0])
    assert major >= 2


def test_one_rank_collectives(nccl_group):
    t = Tensor.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3), device="cuda:0")
    dist.all_reduce(t)
    np.testing.assert_array_equal(t.to_numpy(), np.arange(6).reshape(2, 3))
    dist.all_reduce(t, "avg")
    dist.broadcast(t, 0)
    np.testing.assert_array_equal(t.to_numpy(), np.arange(6).reshape(2, 3))
    (g0,) = dist.all_gather(Tensor.from_numpy(np.array([4, 5], dtype=np.int64), device="cuda:0"))
    np.testing.assert_array_equal(g0.to_numpy(), [4, 5])
    with pytest.raises(DistributedError, match="cuda:0"):
        dist.all_reduce(Tensor.from_numpy(np.ones(2)))  # a CPU tensor in an NCCL group


def test_one_rank_ddp_equals_plain_training(nccl_group):
    from keydnn.nn import Linear, MSELoss, Sequential
    from keydnn.optim import SGD

    def run(wrap: bool):
        import keydnn
        keydnn.manual_seed(3)
        net = Sequential(Linear(5, 4), Linear(4, 2)).to("cuda:0")
        model = dist.DistributedDataParallel(net, bucket_cap_mb=0.00005) if wrap else net
        opt = SGD(model.parameters(), lr=0.1)
        rng = np.random.default_rng(0)
        for _ in range(3):
            x = Tensor.from_numpy(rng.normal(size=(8, 5)).astype(np.float32), device="cuda:0")
            y = Tensor.from_numpy(rng.normal(size=(8, 2)).astype(np.float32), device="cuda:0")
            opt.zero_grad()
            MSELoss()(model(x), y).backward()
            opt.step()
        return [p.to_numpy() for p in net.parameters()]

    for a, b in zip(run(False), run(True), strict=True):
        np.testing.assert_array_equal(a, b)


def _gpus() -> int:
    from keydnn.infrastructure.backends import cuda
    return cuda.device_count()


def test_two_gpus_over_nccl_equal_one_process_with_the_global_batch(tmp_path, monkeypatch):
    if _gpus() < 2:
        pytest.skip("needs two GPUs")
    from keydnn.distributed.run import launch
    monkeypatch.setenv("PYTHONPATH", ROOT)
    monkeypatch.setenv("KEYDNN_TEST_DEVICE", "cuda")
    assert launch([WORKER, "ddp", str(tmp_path)], 2, backend="nccl") == 0
    sys.path.insert(0, str(Path(WORKER).parent))
    from test_distributed import _single_process_reference  # noqa: E402 (the host reference)
    ref = _single_process_reference()
    r0, r1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    for i, want in enumerate(ref):
        np.testing.assert_allclose(r0[f"arr_{i}"], want, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(r0[f"arr_{i}"], r1[f"arr_{i}"])


def test_copies_between_gpus():
    if _gpus() < 2:
        pytest.skip("needs two GPUs")
    a = Tensor.from_numpy(np.arange(12, dtype=np.float32).reshape(3, 4), device="cuda:0")
    b = a.to("cuda:1")
    assert str(b.device) == "cuda:1"
    np.testing.assert_array_equal(b.to_numpy(), a.to_numpy())
    np.testing.assert_array_equal(b.to("cuda:0").to_numpy(), a.to_numpy())

