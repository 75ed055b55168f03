"""Benchmarks with each framework in a process of its own and the rounds still interleaved (A B C A B C ...).

In one process, frameworks share runtimes they did not choose (one libgomp serves whoever loaded it first,
with the settings of that moment), so an in-process comparison may not show each at its standalone speed.
Here every framework gets a fresh ``spawn`` process that builds its workloads and times its own batches on
request; the parent only orders the rounds and waits ``settle`` seconds before each batch, so that threads a
previous batch left spinning (libgomp spins for a few ms after a parallel region) are asleep again.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import time
from pathlib import Path
from typing import Any

from keydnn.bench.harness import Timing, _batch, _timing


def _load_builder(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location("_keydnn_isolated_cases", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return getattr(module, name)


def _loaded_libraries() -> list[str]:
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    names = {Path(line.split(maxsplit=5)[5]).name for line in maps if len(line.split(maxsplit=5)) == 6}
    return sorted(n for n in names if any(k in n for k in ("gomp", "openblas", "keydnn", "libtorch_cpu")))


def _serve(conn: Any, path: str, builder: str, spec: str) -> None:
    cases = _load_builder(path, builder)(spec)
    conn.send(sorted(k for k, v in cases.items() if v is not None))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "libraries":
            conn.send(_loaded_libraries())
        elif msg[0] == "warmup":
            for _ in range(msg[2]):
                cases[msg[1]]()
            conn.send(None)
        elif msg[0] == "batch":
            conn.send(_batch(cases[msg[1]], None, msg[2]))


class Worker:
    """Workloads in a spawned process: ``builder(spec)`` in the file ``path`` returns a dict of
    ``"case|label"`` -> zero-argument step (None where unavailable); ``spec`` says what to build (for example
    which frameworks, in which import order). ``tag`` prefixes this worker's labels in the results, so
    several workers may time the same labels (the same framework set up in different ways)."""

    def __init__(self, path: str, builder: str, spec: str, tag: str = ""):
        self.tag = tag
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, str(path), builder, spec), daemon=True)
        self.proc.start()
        self.cases: list[str] = self.conn.recv()

    def ask(self, *msg: Any) -> Any:
        self.conn.send(msg)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(("stop",))
        self.proc.join(timeout=30)


def measure_isolated(workers: list[Worker], case: str, *, warmup: int = 5, repeats: int = 21,
                     number: int = 1, settle: float = 0.02) -> dict[str, Timing]:
    """Time every ``case|label`` step of every worker, one batch each per round, rounds interleaved across
    the processes; returns label -> Timing."""
    keys = [(w, key) for w in workers for key in w.cases if key.split("|", 1)[0] == case]
    for w, key in keys:
        w.ask("warmup", key, warmup)
    samples: dict[str, list[float]] = {w.tag + key.split("|", 1)[1]: [] for w, key in keys}
    for _ in range(repeats):
        for w, key in keys:
            time.sleep(settle)
            samples[w.tag + key.split("|", 1)[1]].append(w.ask("batch", key, number))
    return {label: _timing(s, number) for label, s in samples.items()}
