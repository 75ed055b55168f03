"""The published asv dashboard works offline: its pages name no CDN, and headless Chromium, served the folder
on 127.0.0.1 only, renders the benchmark grid and a benchmark's graph with every committed machine in the
machine selector. Skips where asv or Chromium is missing (.ci/run installs Chromium)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "asv_bench" / "results"
GRAPH = "bench_workloads.TrainingStep.time_step"

pytest.importorskip("asv")


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "asv_bench"))
    try:
        import tasks
    finally:
        sys.path.remove(str(ROOT / "asv_bench"))
    html = tmp_path_factory.mktemp("html")
    conf = json.loads(re.sub(r"^\s*//.*$", "", (ROOT / "asv_bench" / "asv.conf.json").read_text(), flags=re.M))
    conf.update(repo=str(ROOT), results_dir=str(RESULTS), html_dir=str(html),
                benchmark_dir=str(ROOT / "asv_bench" / "benchmarks"))
    conf_path = html.parent / "asv.conf.json"
    conf_path.write_text(json.dumps(conf))
    subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(conf_path)], check=True,
                   capture_output=True, cwd=ROOT / "asv_bench")
    tasks.vendor_page(html)
    return html


@contextlib.contextmanager
def serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()


def dom(url: str, chromium: str) -> str:
    out = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120)
    return out.stdout


def test_pages_name_no_cdn(published):
    for page in published.glob("*.html"):
        text = page.read_text()
        assert not re.findall(r'(?:src|href)="https?://[^"]+\.(?:js|css)"', text), page.name
        assert "integrity=" not in text
    assert (published / "vendor" / "jquery-3.3.1.min.js").exists()


def _machines_with_results() -> set[str]:
    """Machines that hold results (a smoke run leaves a machine.json alone, e.g. CI's `ci`: nothing to draw)."""
    return {p.parent.name for p in RESULTS.glob("*/machine.json")
            if any(f.name != "machine.json" for f in p.parent.glob("*.json"))}


def test_every_machine_is_published(published):
    index = json.loads((published / "index.json").read_text())
    machines = _machines_with_results()
    assert {"dev-2core", "h200"} <= machines  # the CPU and the GPU line of the dashboard
    assert machines <= set(index["params"]["machine"])


def test_chromium_renders_grid_and_graph_offline(published):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with serve(published) as url:
        grid = dom(url, chromium)
        graph = dom(f"{url}#{GRAPH}", chromium)
    assert "external (JavaScript) dependencies" not in grid
    assert len(re.findall(r'class="btn benchmark-container"', grid)) > 50, grid[:2000]
    assert GRAPH in grid
    assert re.search(r'<canvas class="flot-base"', graph), graph[:2000]
    for machine in _machines_with_results():
        assert machine in graph
