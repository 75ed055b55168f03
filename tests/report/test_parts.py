"""Pieces of the report: the error measure, kernel traces, the generated reports/README.md index."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("pandas")

from keydnn.infrastructure import backends
from keydnn.report import index, parity
from keydnn.report.samples import spec_by_name
from keydnn.report.workloads import all_workloads, cost


def test_compare_measures_error_against_tolerance():
    abs_err, rel_err, ratio = parity.compare([1.0, 2.0 + 1e-3], [1.0, 2.0], rtol=1e-4, atol=0.0)
    assert abs_err == pytest.approx(1e-3) and rel_err == pytest.approx(5e-4) and ratio == pytest.approx(5.0)
    assert parity.compare([np.nan, np.inf], [np.nan, np.inf], 1e-4, 1e-5) == (0.0, 0.0, 0.0)
    assert parity.compare([np.nan], [1.0], 1e-4, 1e-5)[2] == math.inf
    assert parity.compare(np.ones(3), np.ones(4), 1e-4, 1e-5) == (math.inf,) * 3
    assert parity.compare(np.float64(2.0), np.float64(2.0), 0, 0) == (0.0, 0.0, 0.0)


@pytest.mark.skipif(backends.native_table() is None, reason="native CPU library not built")
def test_traces_name_the_library_that_ran():
    conv = spec_by_name()["conv2d"]
    native = {r["phase"]: r["kernels"] for r in parity.check_op(conv, "float32", ["native"], None)}
    numpy_ = {r["phase"]: r["kernels"] for r in parity.check_op(conv, "float32", ["numpy"], None)}
    assert "native:conv2d_forward" in native["forward"] and "numpy:conv2d" not in native["forward"]
    assert "native:conv2d_backward_weight" in native["grad:arg1"]
    assert "numpy:conv2d_forward" in numpy_["forward"]


def test_a_failing_op_is_a_failed_row_not_a_crash(monkeypatch):
    spec = spec_by_name()["exp"]

    def boom(*a, **k):
        raise RuntimeError("kernel exploded")
    monkeypatch.setattr(spec, "fn", boom)
    rows = parity.check_op(spec, "float32", ["numpy"], None)
    assert [r["phase"] for r in rows] == ["forward"] and not rows[0]["passed"]
    assert "kernel exploded" in rows[0]["note"]


def test_every_workload_has_an_id_and_op_workloads_a_cost():
    ws = all_workloads()
    assert len({w.id for w in ws}) == len(ws)
    assert {w.source for w in ws} == {"registry", "seed README", "model"}
    specs = spec_by_name()
    for w in ws:
        if w.kind == "op" and (w.source != "registry" or specs[w.name].cost is not None):
            flops, nbytes = cost(w)
            assert flops > 0 and nbytes > 0, w.id
        else:
            assert cost(w) is None
    linear = next(w for w in ws if w.name.startswith("Linear"))
    assert cost(linear)[0] == pytest.approx(3 * 2 * 1024**3)


def test_index_lists_runs_and_history(tmp_path):
    run = tmp_path / "2026-12-02_box_abc1234"
    run.mkdir()
    (run / "env.json").write_text(json.dumps({"git": {"sha": "abc1234def", "dirty": True}, "cpu": "EPYC",
                                              "cores": 2, "devices": ["cpu"], "quick": False, "seconds": 42.0,
                                              "gpu": None}))
    (run / "parity.csv").write_text("op,passed\nadd,True\nexp,False\n")
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "bench_h200.md").write_text("# KeyDNN vs PyTorch on an H200\n")
    text = index.write(tmp_path).read_text()
    assert "[2026-12-02_box_abc1234](2026-12-02_box_abc1234/summary.md)" in text
    assert "abc1234 (dirty)" in text and "1/2 passed" in text and "full, 42 s" in text
    assert "[gpu/bench_h200.md](gpu/bench_h200.md) | KeyDNN vs PyTorch on an H200" in text


def test_report_is_a_subcommand_of_python_m_keydnn(capsys):
    from keydnn.__main__ import main
    with pytest.raises(SystemExit) as info:
        main(["report", "--help"])
    assert info.value.code == 0 and "--device" in capsys.readouterr().out


def test_a_copy_without_git_takes_its_commit_from_the_environment(tmp_path, monkeypatch):
    from keydnn.report.env import git_state
    monkeypatch.setenv("KEYDNN_GIT_SHA", "0123456789abcdef")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    state = git_state(tmp_path)
    assert state["sha"] == "0123456789abcdef" and "KEYDNN_GIT_SHA" in state["reason"]


def test_a_machine_without_git_takes_its_commit_from_the_environment(tmp_path, monkeypatch):
    """The images install no git: the report there names the commit given in KEYDNN_GIT_SHA."""
    from keydnn.report.env import git_state
    monkeypatch.setenv("KEYDNN_GIT_SHA", "fedcba9876543210")
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere on it
    state = git_state(tmp_path)
    assert state["sha"] == "fedcba9876543210" and "git unavailable" in state["reason"]
    monkeypatch.delenv("KEYDNN_GIT_SHA")
    assert git_state(tmp_path)["sha"] is None
