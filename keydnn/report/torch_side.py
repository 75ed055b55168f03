"""The report's handle on the PyTorch worker process (``_torch_worker``): start it with the same thread count,
send one request at a time, and say why when PyTorch cannot be used."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class WorkerError(RuntimeError):
    pass


class TorchWorker:
    """``available`` is False (and ``reason`` says why) when torch is missing or the worker failed to start."""

    def __init__(self, threads: int, enabled: bool = True) -> None:
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.reason = "" if enabled else "PyTorch comparison turned off (--no-torch)"
        self.available = False
        if not enabled:
            return
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "keydnn.report._torch_worker", str(threads)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT)
            first = self._call({"cmd": "hello"})
        except (OSError, WorkerError, EOFError) as exc:
            self.reason = f"PyTorch worker failed to start: {exc}"
            self.close()
            return
        if "error" in first:
            self.reason = first["error"]
            self.close()
            return
        self.info = first
        self.available = True

    def _call(self, msg: dict) -> dict:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            pickle.dump(msg, self.proc.stdin)
            self.proc.stdin.flush()
            return pickle.load(self.proc.stdout)
        except (BrokenPipeError, EOFError, pickle.UnpicklingError) as exc:
            raise WorkerError(f"PyTorch worker died (exit {self.proc.poll()}): {exc}") from exc

    def call(self, cmd: str, **kw: Any) -> dict:
        """Send a request; an answer carrying ``error`` raises WorkerError."""
        answer = self._call({"cmd": cmd, **kw})
        if "error" in answer:
            raise WorkerError(answer["error"])
        return answer

    def parity(self, op: str, dtype: str) -> list[dict] | None:
        if not self.available:
            return None
        try:
            return self.call("parity", op=op, dtype=dtype)["answers"]
        except WorkerError as exc:
            return [{"error": str(exc)}]

    def setup(self, key: str, workload: Any, device: str) -> None:
        self.call("setup", key=key, workload=asdict(workload), device=device)

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self._call({"cmd": "quit"})
        except WorkerError:
            pass
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    stream.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
