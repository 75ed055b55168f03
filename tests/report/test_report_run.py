"""`python -m keydnn report --quick` on a small subset, in process: the CSV schemas, the files it writes, and a
planted parity breach that must make the command fail and name the op."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pandas")

from keydnn.infrastructure import backends
from keydnn.report import cli, parity, speed

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rc = cli.main(["--quick", "--ops", "tanh,sum,conv2d", "--workloads", "registry:add,model:MLP",
                   "--rounds", "3", "--out", str(out)])
    return rc, out


def test_quick_run_passes_and_writes_every_file(quick_run):
    rc, out = quick_run
    assert rc == 0
    for name in ("env.json", "parity.csv", "speedup.csv", "summary.md", "report.html"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html  # charts embedded, nothing fetched
    assert "## Parity" in (out / "summary.md").read_text()


def test_parity_csv_schema(quick_run):
    df = pd.read_csv(quick_run[1] / "parity.csv")
    assert list(df.columns) == parity.COLUMNS
    assert set(df.op) == {"tanh", "sum", "conv2d"}
    expected_backends = {"numpy", "native"} if backends.native_table() is not None else {"numpy"}
    assert set(df.backend) == expected_backends
    assert set(df.dtype) == {"float32", "float64"}
    # conv2d: forward and one row per float input (x, weight, bias)
    conv = df[(df.op == "conv2d") & (df.backend == "numpy") & (df.dtype == "float32")]
    assert sorted(conv.phase) == ["forward", "grad:arg0", "grad:arg1", "grad:arg2"]
    assert df.passed.dtype == bool and df.passed.all()
    assert (df.err_over_tol <= 1).all()
    # every row is compared with the reference, except the NumPy backend's own float64 gradients (the
    # gradient reference itself, checked by finite differences instead)
    self_ref = (df.backend == "numpy") & (df.dtype == "float64") & df.phase.str.startswith("grad")
    assert (df[~self_ref].ref_max_abs >= 0).all() and df[self_ref].ref_max_abs.isna().all()
    f64_grads = df[(df.dtype == "float64") & df.phase.str.startswith("grad")]
    assert f64_grads.fd_grad_err.notna().all() and (f64_grads.fd_grad_err <= f64_grads.fd_tol).all()
    if backends.native_table() is not None:
        native_conv = df[(df.op == "conv2d") & (df.backend == "native") & (df.phase == "forward")]
        assert native_conv.kernels.str.contains("native:conv2d_forward").all()
    assert df[df.backend == "numpy"].kernels.str.contains("numpy:").all()


def test_speedup_csv_schema(quick_run):
    df = pd.read_csv(quick_run[1] / "speedup.csv")
    assert list(df.columns) == speed.COLUMNS
    assert set(df.workload) == {"add", "MLP 64-128-128-10 Adam, batch 64"}
    timed = df[df.median_s.notna()]
    assert (timed.rounds == 3).all() and (timed.p10_s <= timed.median_s).all() and (
        timed.median_s <= timed.p90_s).all()
    add = timed[timed.workload == "add"]
    assert (add.flops == 1024 * 1024).all() and np.allclose(add.gbps, add.bytes / add.median_s / 1e9)
    assert add.pct_of_roofline.notna().all()
    assert df[df.workload.str.startswith("MLP")].flops.isna().all()  # model steps carry no registry cost
    if "torch-cpu" in set(df.implementation):
        mine = df[df.implementation.str.startswith("keydnn")]
        assert mine.ratio_vs_torch.notna().all() and (mine.ratio_p10 <= mine.ratio_p90).all()


def test_env_json_names_both_sides_and_the_threads(quick_run):
    env = json.loads((quick_run[1] / "env.json").read_text())
    assert env["threads"] >= 1 and env["cores"] >= 1 and env["git"].keys() >= {"sha", "dirty"}
    assert env["gpu"] is None and env["gpu_reason"]
    assert env["ceilings"]["cpu"]["bandwidth_gbps"] > 0 and env["ceilings"]["cpu"]["flops_tflops"] > 0
    assert any("heavy workloads" in x for x in env["left_out"])
    if env["torch"]:
        assert env["torch"]["threads"] == env["threads"]
        assert env["threadpools_torch"] and env["torch"]["pid"] != env["keydnn"].get("pid", -1)


@pytest.fixture
def broken_tanh(monkeypatch):
    """Perturb the tanh kernel of every CPU table by 1e-3 relative: far outside float32/float64 tolerances."""
    for table in (backends.numpy_table(), backends.native_table()):
        if table is not None:
            good = table.tanh
            monkeypatch.setattr(table, "tanh", lambda a, good=good: good(a) * (1 + 1e-3))


def test_planted_parity_breach_fails_the_command_and_names_the_op(broken_tanh, tmp_path, capsys):
    rc = cli.main(["--ops", "tanh,exp", "--no-speed", "--no-torch", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    err = captured.err
    assert "left out: PyTorch columns: PyTorch comparison turned off" in captured.out
    assert rc == 1
    assert "PARITY FAILED" in err and "tanh (numpy, float32, forward)" in err and "exp (" not in err
    df = pd.read_csv(tmp_path / "parity.csv")
    assert not df[(df.op == "tanh") & (df.phase == "forward")].passed.any() and df[df.op == "exp"].passed.all()
    assert "FAIL" in (tmp_path / "summary.md").read_text() or "Failed checks" in (tmp_path / "summary.md").read_text()
