"""keydnn.bench.isolated: workloads built and timed in spawned processes, rounds interleaved; and the harness's
spread never leaves the range of its samples."""

from __future__ import annotations

import os
import textwrap

from keydnn.bench.harness import _timing
from keydnn.bench.isolated import Worker, measure_isolated

BUILDER = textwrap.dedent("""
    import os, time

    def build(spec):
        def slow():
            time.sleep(0.002)
        def fast():
            pass
        out = {f"sleep|{spec}": slow if spec == "slow" else fast, "pid|" + spec: lambda: os.getpid()}
        out["missing|" + spec] = None
        return out
""")


def test_each_label_is_timed_in_its_own_process(tmp_path):
    path = tmp_path / "cases.py"
    path.write_text(BUILDER)
    workers = [Worker(str(path), "build", spec) for spec in ("slow", "fast")]
    try:
        assert all("missing|" + s not in w.cases for s, w in zip(("slow", "fast"), workers, strict=True))
        assert {w.proc.pid for w in workers} != {os.getpid()} and len({w.proc.pid for w in workers}) == 2
        t = measure_isolated(workers, "sleep", warmup=1, repeats=4, number=2, settle=0.0)
        assert set(t) == {"slow", "fast"}
        assert t["slow"].median >= 0.002 > t["fast"].median
        assert len(t["slow"].samples) == 4 and t["slow"].number == 2
        assert isinstance(workers[0].ask("libraries"), list)
    finally:
        for w in workers:
            w.close()


def test_spread_stays_within_the_samples():
    t = _timing([3.0, 1.0, 2.0], 1)
    assert 1.0 <= t.p10 <= t.median <= t.p90 <= 3.0 and t.median == 2.0
