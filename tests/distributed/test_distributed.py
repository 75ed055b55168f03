"""keydnn.distributed on the host backend: the launcher, the collectives, DDP against one process with the
global batch, failing ranks, and the post-accumulate hooks DDP rests on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import keydnn.distributed as dist
from keydnn import Tensor
from keydnn.distributed.run import launch
from keydnn.domain.errors import AutogradError, DistributedError
from keydnn.infrastructure.autograd import register_post_accumulate_grad_hook
from keydnn.nn import MSELoss
from keydnn.optim import SGD

WORKER = str(Path(__file__).with_name("_worker.py"))
ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(autouse=True)
def _pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _run(scenario: str, tmp_path: Path, nproc: int = 2) -> int:
    return launch([WORKER, scenario, str(tmp_path)], nproc)


def test_collectives_on_three_ranks(tmp_path):
    assert _run("collectives", tmp_path, 3) == 0
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    for r in range(3):
        f = np.load(tmp_path / f"rank{r}.npz")
        np.testing.assert_array_equal(f["sum"], base * 6)  # 1 + 2 + 3
        np.testing.assert_array_equal(f["bcast"], np.full(4, 2.0))
        np.testing.assert_array_equal(f["gather"], [[0, 0], [1, 10], [2, 20]])
        np.testing.assert_array_equal(f["max"], [2.0])


def _single_process_reference():
    sys.path.insert(0, str(Path(WORKER).parent))
    import _worker

    os.environ["RANK"] = "0"
    try:
        net = _worker.model()
    finally:
        del os.environ["RANK"]
    x, y = _worker.data()
    opt = SGD(net.parameters(), lr=0.1)
    for _ in range(2):
        for i in range(0, 64, 16):  # the global batch: 2 ranks x 8
            opt.zero_grad()
            MSELoss()(net(Tensor.from_numpy(x[i:i + 16])), Tensor.from_numpy(y[i:i + 16])).backward()
            opt.step()
    return [p.to_numpy() for p in net.parameters()]


@pytest.mark.parametrize("scenario", ["ddp", "fit"])
def test_two_ranks_equal_one_process_with_twice_the_batch(tmp_path, scenario):
    assert _run(scenario, tmp_path) == 0
    ref = _single_process_reference()
    r0, r1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    assert len(r0.files) == len(ref) == 4
    for i, want in enumerate(ref):
        np.testing.assert_allclose(r0[f"arr_{i}"], want, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(r0[f"arr_{i}"], r1[f"arr_{i}"])  # replicas stay identical


def _cli(scenario: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keydnn.distributed.run", "--nproc", "2", WORKER, scenario,
                           str(tmp_path)], capture_output=True, text=True, timeout=60)


def test_a_failing_rank_stops_the_run_without_hanging(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYDNN_TEST_TIMEOUT", "20")  # the peers notice the exit long before their timeout
    t0 = time.monotonic()
    proc = _cli("fail", tmp_path)
    assert proc.returncode in (1, 3)  # whichever rank the launcher saw first
    assert time.monotonic() - t0 < 15
    assert "rank 0: rank 1 exited" in proc.stderr


def test_ranks_disagreeing_on_a_shape_raise(tmp_path):
    proc = _cli("mismatch", tmp_path)
    assert proc.returncode != 0
    assert "DistributedError" in proc.stderr and "all_reduce" in proc.stderr


def test_launcher_rejects_zero_ranks():
    with pytest.raises(SystemExit):
        launch([WORKER], 0)


def test_single_rank_group_and_errors(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DistributedError, match="init_process_group"):
        dist.get_rank()
    g = dist.init_process_group()
    try:
        t = Tensor.from_numpy(np.array([1.0, 2.0]))
        dist.all_reduce(t, "avg")
        np.testing.assert_array_equal(t.to_numpy(), [1.0, 2.0])
        with pytest.raises(DistributedError, match="unknown op"):
            dist.all_reduce(t, "median")
        with pytest.raises(DistributedError, match="expected a Tensor"):
            dist.all_reduce(np.ones(2))
        with pytest.raises(DistributedError, match="Module"):
            dist.DistributedDataParallel(object())
        with pytest.raises(DistributedError, match="global batch"):
            dist.DistributedSampler(np.ones((3, 2)), np.ones(3), batch_size=4)
    finally:
        dist.destroy_process_group()
        assert g.world_size == 1 and not dist.is_initialized()
    monkeypatch.setenv("KEYDNN_DIST_BACKEND", "mpi")
    with pytest.raises(DistributedError, match="unknown backend"):
        dist.init_process_group()


def test_ddp_reports_a_parameter_without_gradient(monkeypatch):
    from keydnn.nn import Linear, Sequential
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist.init_process_group()
    try:
        net = Sequential(Linear(3, 2), Linear(2, 2))
        ddp = dist.DistributedDataParallel(net)
        x = Tensor.randn((4, 3))
        first = next(iter(net.children()))
        first(x).sum().backward()  # the second layer gets no gradient
        with pytest.raises(DistributedError, match="no gradient"):
            ddp(x)
    finally:
        dist.destroy_process_group()


def test_post_accumulate_hook_fires_once_after_every_use():
    w = Tensor.from_numpy(np.array([2.0, 3.0]), requires_grad=True)
    seen = []
    handle = register_post_accumulate_grad_hook(w, lambda p: seen.append(p.grad.to_numpy().copy()))
    ((w * w).sum() + (w * 3.0).sum()).backward()  # two uses: 2w + 3
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [7.0, 9.0])
    handle.remove()
    (w * 1.0).sum().backward()
    assert len(seen) == 1
    with pytest.raises(AutogradError, match="leaf"):
        register_post_accumulate_grad_hook(w * 2.0, lambda p: None)
