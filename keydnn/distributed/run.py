"""The launcher: ``python -m keydnn.distributed.run --nproc N [--backend nccl|cpu] script.py [args...]``.

Starts N copies of the script, one per rank (and per GPU with nccl), with RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT and KEYDNN_DIST_BACKEND in their environment, as torchrun does. When one rank fails
the others are stopped and the launcher exits with that rank's status, so a failure never leaves a run hanging.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: list[str], nproc: int, *, backend: str = "cpu", port: int | None = None,
           grace: float = 10.0) -> int:
    """Run ``script`` (argv, a .py path first) as ``nproc`` ranks; return the first failing rank's exit
    status, or 0."""
    if nproc < 1:
        raise SystemExit(f"keydnn.distributed.run: --nproc must be >= 1, got {nproc}")
    port = port or free_port()
    procs = []
    for rank in range(nproc):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), KEYDNN_DIST_BACKEND=backend,
                   KEYDNN_DIST_AUTHKEY=os.urandom(16).hex() if rank == 0 else "")
        if rank:
            env["KEYDNN_DIST_AUTHKEY"] = procs[0][1]
        procs.append((subprocess.Popen([sys.executable, *script], env=env), env["KEYDNN_DIST_AUTHKEY"]))
    status = 0
    running = {rank: p for rank, (p, _) in enumerate(procs)}
    while running:
        for rank, p in list(running.items()):
            code = p.poll()
            if code is None:
                continue
            del running[rank]
            if code != 0 and status == 0:
                status = code
                sys.stderr.write(f"keydnn.distributed.run: rank {rank} exited with status {code}; "
                                 f"stopping ranks {sorted(running)}\n")
                _stop(list(running.values()), grace)
        time.sleep(0.05)
    return status


def _stop(procs: list[subprocess.Popen], grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m keydnn.distributed.run", description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, required=True, help="number of ranks (one per GPU with nccl)")
    ap.add_argument("--backend", choices=("cpu", "nccl"), default="cpu")
    ap.add_argument("--master-port", type=int, default=None)
    ap.add_argument("script", help="the training script")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    return launch([a.script, *a.args], a.nproc, backend=a.backend, port=a.master_port)


if __name__ == "__main__":
    sys.exit(main())
