"""A script the distributed tests launch as several ranks: python _worker.py SCENARIO OUTDIR."""

from __future__ import annotations

import os
import sys

import numpy as np

import keydnn.distributed as dist
from keydnn import Tensor
from keydnn.nn import Linear, MSELoss, ReLU, Sequential
from keydnn.optim import SGD


def data(n: int = 64):
    rng = np.random.default_rng(7)
    return rng.normal(size=(n, 5)), rng.normal(size=(n, 3))


def device() -> str:
    """KEYDNN_TEST_DEVICE=cuda puts rank r on cuda:LOCAL_RANK (the nccl runs); the CPU otherwise."""
    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if os.environ.get("KEYDNN_TEST_DEVICE") == "cuda" else "cpu"


def model():
    import keydnn
    keydnn.manual_seed(int(os.environ.get("RANK", "0")) + 11)  # different per rank: DDP must broadcast rank 0's
    net = Sequential(Linear(5, 8, dtype=np.float64), ReLU(), Linear(8, 3, dtype=np.float64))
    return net.to(device())


def main(scenario: str, out: str) -> None:
    g = dist.init_process_group(timeout=float(os.environ.get("KEYDNN_TEST_TIMEOUT", "60")))
    rank, world = dist.get_rank(), dist.get_world_size()
    if scenario == "collectives":
        t = Tensor.from_numpy(np.arange(6, dtype=np.float64).reshape(2, 3) * (rank + 1))
        dist.all_reduce(t)
        b = Tensor.from_numpy(np.full((4,), float(rank)))
        dist.broadcast(b, src=world - 1)
        parts = dist.all_gather(Tensor.from_numpy(np.array([rank, 10 * rank], dtype=np.int64)))
        m = Tensor.from_numpy(np.array([float(rank)]))
        dist.all_reduce(m, "max")
        dist.barrier()
        np.savez(os.path.join(out, f"rank{rank}.npz"), sum=t.to_numpy(), bcast=b.to_numpy(),
                 gather=np.stack([p.to_numpy() for p in parts]), max=m.to_numpy())
    elif scenario in ("ddp", "fit"):
        net = dist.DistributedDataParallel(model(), bucket_cap_mb=0.0001)  # several buckets
        x, y = data()
        opt = SGD(net.parameters(), lr=0.1)
        sampler = dist.DistributedSampler(x, y, batch_size=8, shuffle=False)
        if scenario == "fit":
            net.module.fit(sampler, None, loss=MSELoss(), optimizer=opt, epochs=2, verbose=0)
        else:
            for _ in range(2):
                for xb, yb in sampler:
                    opt.zero_grad()
                    xt, yt = Tensor.from_numpy(xb, device=device()), Tensor.from_numpy(yb, device=device())
                    MSELoss()(net(xt), yt).backward()
                    opt.step()
        np.savez(os.path.join(out, f"rank{rank}.npz"), *[p.to_numpy() for p in net.parameters()])
    elif scenario == "fail":
        t = Tensor.from_numpy(np.ones(3))
        dist.all_reduce(t)
        if rank == 1:
            raise SystemExit(3)
        dist.all_reduce(t)  # rank 1 never joins this one
    elif scenario == "mismatch":
        dist.all_reduce(Tensor.from_numpy(np.ones(3 + rank)))
    g.destroy()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
