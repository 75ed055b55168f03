"""summary.md and one self-contained report.html (charts as base64 PNGs): speedup against PyTorch per device,
the parity heatmap (error / tolerance per op and backend) and a roofline per device with its measured
ceilings. Tables come from pandas, charts from matplotlib."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keydnn.report.env import throttled


def md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    cells = df.astype(object).where(df.notna(), "").astype(str)
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(v.replace("|", "/") for v in row) + " |" for row in cells.to_numpy()]
    return "\n".join(lines)


def _time(s: float) -> str:
    if s is None or not math.isfinite(s):
        return ""
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def speed_table(speed: pd.DataFrame, device: str) -> pd.DataFrame:
    """One row per workload on ``device``: each implementation's median and KeyDNN / PyTorch ratios."""
    d = speed[speed.device == device]
    rows = []
    for (wl, src), g in d.groupby(["workload", "source"], sort=False):
        row: dict[str, Any] = {"workload": wl, "source": src}
        for r in g.itertuples():
            row[r.implementation] = _time(r.median_s) or (r.note[:40] if isinstance(r.note, str) else "")
            if isinstance(r.ratio_vs_torch, float) and math.isfinite(r.ratio_vs_torch):
                row[f"{r.implementation} / torch"] = f"{r.ratio_vs_torch:.2f}x [{r.ratio_p10:.2f}-{r.ratio_p90:.2f}]"
            if isinstance(r.pct_of_roofline, float) and math.isfinite(r.pct_of_roofline) and r.kind == "op":
                row[f"{r.implementation} % roofline"] = f"{r.pct_of_roofline:.0f}%"
        rows.append(row)
    return pd.DataFrame(rows)


# ---- charts ------------------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def speedup_chart(speed: pd.DataFrame, device: str) -> str | None:
    import matplotlib.pyplot as plt
    d = speed[(speed.device == device) & speed.ratio_vs_torch.notna()]
    if d.empty:
        return None
    impls = list(dict.fromkeys(d.implementation))
    names = list(dict.fromkeys(d.workload))
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(names) * len(impls) + 1.5))
    height = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        sub = d[d.implementation == impl].set_index("workload").reindex(names)
        speedup = 1.0 / sub.ratio_vs_torch  # > 1: KeyDNN faster
        err = [speedup - 1.0 / sub.ratio_p10.where(sub.ratio_p10 > 0), 1.0 / sub.ratio_p90 - speedup]
        err = [np.abs(np.nan_to_num(e)) for e in err]
        ax.barh(np.arange(len(names)) + j * height, speedup, height, xerr=err, label=impl, alpha=0.85)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speed relative to PyTorch (PyTorch time / KeyDNN time; > 1 is faster; bars: p10-p90 of rounds)")
    ax.set_title(f"KeyDNN vs PyTorch on {device}")
    ax.legend(fontsize=8)
    return _png(fig)


def parity_heatmap(parity: pd.DataFrame) -> str | None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    if parity.empty:
        return None
    p = parity.assign(col=parity.backend + " " + parity.dtype.str.replace("float", "f"))
    grid = p.groupby(["op", "col"], sort=False)["err_over_tol"].max().unstack("col")
    grid = grid.reindex(list(dict.fromkeys(p.op)))
    vals = grid.to_numpy(dtype=float)
    shown = np.clip(np.where(np.isfinite(vals), vals, np.nan), 1e-4, 1e2)
    fig, ax = plt.subplots(figsize=(1.1 * len(grid.columns) + 3, 0.2 * len(grid) + 1.5))
    im = ax.imshow(shown, aspect="auto", cmap="RdYlGn_r", norm=LogNorm(1e-4, 1e2))
    ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(grid)), grid.index, fontsize=6)
    for i, j in zip(*np.where(vals > 1)):
        ax.text(j, i, "FAIL", ha="center", va="center", fontsize=6, color="k")
    fig.colorbar(im, ax=ax, label="worst error / tolerance (<= 1 passes)")
    ax.set_title("Parity: worst error / tolerance over phases (reference, PyTorch, CPU-CUDA, finite differences)")
    return _png(fig)


def roofline_chart(speed: pd.DataFrame, device: str, ceil: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt
    d = speed[(speed.device == device) & speed.tflops.notna() & (speed.tflops > 0)]
    if d.empty or not ceil:
        return None
    bw, peak = ceil["bandwidth_gbps"], ceil["flops_tflops"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    x = np.logspace(-2, 4, 200)
    ax.plot(x, np.minimum(peak, x * bw / 1e3), "k-", lw=1.5,
            label=f"measured ceilings: {bw:.0f} GB/s, {peak:.2f} TFLOP/s")
    for impl, g in d.groupby("implementation"):
        ax.scatter(g.intensity, g.tflops, s=22, label=impl, alpha=0.8)
    for r in d[d.implementation.str.startswith("keydnn")].itertuples():
        ax.annotate(r.workload.split(" ")[0], (r.intensity, r.tflops), fontsize=6, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte, registry cost)")
    ax.set_ylabel("achieved TFLOP/s")
    ax.set_title(f"Roofline on {device}")
    ax.legend(fontsize=7)
    return _png(fig)


# ---- documents ---------------------------------------------------------------------------------------------
def _runtimes(pools: Any) -> str:
    if not pools:
        return "n/a"
    return "; ".join(f"{p.get('internal_api')} {p.get('num_threads')} threads ({p.get('filepath') or p.get('error')})"
                     for p in pools)


def header(stamp: dict[str, Any]) -> list[str]:
    git = stamp["git"]
    torch = stamp.get("torch") or {}
    lines = [f"- Machine: {stamp['cpu']}, {stamp['cores']} cores (host {stamp['host']}); {stamp['platform']}",
             f"- Commit: {git.get('sha') or git.get('reason')}{' (dirty working tree)' if git.get('dirty') else ''}",
             f"- Python {stamp['python']}, NumPy {stamp['numpy']}, torch {torch.get('torch', 'not used')}; "
             f"run took {stamp['seconds']:.0f} s{' (--quick)' if stamp['quick'] else ''}; devices: "
             f"{', '.join(stamp['devices'])}",
             f"- Threads: {stamp['threads']} for both KeyDNN and PyTorch (PyTorch ran in its own process: "
             f"torch.get_num_threads() = {torch.get('threads', 'n/a')})",
             f"- KeyDNN's OpenMP/BLAS: {_runtimes(stamp.get('threadpools_keydnn'))}",
             f"- PyTorch's OpenMP/BLAS: {_runtimes(stamp.get('threadpools_torch'))}",
             f"- Load average at the end: {stamp.get('load_average')}"]
    gpu = stamp.get("gpu")
    if gpu:
        for dev, g in gpu["devices"].items():
            lines.append(f"- {dev}: {g.get('name')} {g.get('uuid')}, driver {gpu.get('driver')}, CUDA "
                         f"{gpu.get('cuda_driver')}; throttle reasons seen: {g.get('throttle_reasons_seen') or 'none'}")
    else:
        lines.append(f"- GPU: none ({stamp.get('gpu_reason')})")
    for dev in throttled(gpu):
        lines.append(f"- **WARNING: {dev} throttled during the run; its timings are not at full clock.**")
    for c_dev, c in stamp.get("ceilings", {}).items():
        lines.append(f"- Ceilings measured on {c_dev}: {c['bandwidth_gbps']:.1f} GB/s, "
                     f"{c['flops_tflops']:.3f} TFLOP/s ({c['how']})"
                     + ("; operands that fit in cache can run above this memory-bandwidth roof" if c_dev == "cpu"
                        else ""))
    lines += [f"- Left out: {x}" for x in stamp.get("left_out", [])]
    if stamp.get("note"):
        lines.append(f"- Note: {stamp['note']}")
    return lines


def parity_summary(parity: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    failed = parity[~parity.passed.astype(bool)]
    worst = parity.groupby(["backend", "dtype"])["err_over_tol"].max().reset_index()
    worst["err_over_tol"] = worst.err_over_tol.map(lambda v: f"{v:.3g}")
    text = (f"{len(parity)} checks ({parity.op.nunique()} ops x backend x dtype x phase): "
            f"{len(parity) - len(failed)} passed, {len(failed)} failed.")
    return text, failed[["op", "backend", "dtype", "phase", "err_over_tol", "kernels", "note"]]


def write(out: Path, stamp: dict[str, Any], parity: pd.DataFrame, speed: pd.DataFrame) -> None:
    import matplotlib
    matplotlib.use("Agg")
    title = f"KeyDNN report: {stamp['host']}, {(stamp['git'].get('sha') or 'no git')[:7]}"
    text, failed = parity_summary(parity) if not parity.empty else ("no parity checks ran", parity)
    md = [f"# {title}", "", *header(stamp), "", "## Parity", "", text, ""]
    if len(failed):
        md += ["Failed checks:", "", md_table(failed), ""]
    md += ["Files: env.json, parity.csv, speedup.csv, report.html (charts).", ""]
    devices = list(dict.fromkeys(speed.device)) if not speed.empty else []
    for dev in devices:
        md += [f"## Speed on {dev}", "", "Medians per call; `x / torch` is the median over alternating rounds of "
               "KeyDNN's time over PyTorch's (below 1: KeyDNN faster) with [p10-p90].", "",
               md_table(speed_table(speed, dev)), ""]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    charts = [("Parity heatmap", parity_heatmap(parity))]
    for dev in devices:
        charts.append((f"Speed relative to PyTorch on {dev}", speedup_chart(speed, dev)))
        charts.append((f"Roofline on {dev}", roofline_chart(speed, dev, stamp.get("ceilings", {}).get(dev, {}))))
    body = [f"<h1>{html.escape(title)}</h1>", "<ul>" + "".join(f"<li>{html.escape(x[2:])}</li>" for x in header(stamp))
            + "</ul>", f"<h2>Parity</h2><p>{html.escape(text)}</p>"]
    if len(failed):
        body.append(failed.to_html(index=False))
    for name, png in charts:
        if png:
            body.append(f"<h2>{html.escape(name)}</h2>"
                        f"<img alt='{html.escape(name)}' src='data:image/png;base64,{png}'>")
    for dev in devices:
        body.append(f"<h2>Speed on {html.escape(dev)}</h2>" + speed_table(speed, dev).to_html(index=False))
    body.append("<h2>All parity rows</h2>" + parity.to_html(index=False, float_format=lambda v: f"{v:.3g}"))
    body.append("<h2>All speed rows</h2>" + speed.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse;font-size:11px}"
             "td,th{border:1px solid #ccc;padding:2px 5px} img{max-width:100%}")
    (out / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                                     f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
