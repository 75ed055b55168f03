"""What `nox -s bench`, `nox -s bench_canary` and `nox -s dashboard` run (asv 0.6.6, from asv_bench/).

    python asv_bench/tasks.py bench [--machine NAME] [asv run args...]
    python asv_bench/tasks.py canary [--kernel K] [--factor F] [--threshold T] [--rounds N]
    python asv_bench/tasks.py dashboard
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENDOR = HERE / "vendor"
HTML = HERE / ".asv" / "html"

# asv 0.6.6's index.html loads these from CDNs; the page is blank offline unless they are served locally.
CDN = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": "jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": "jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": "jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "css/bootstrap.min.css",
}


def python() -> str:
    """One interpreter path every time: asv names an existing environment after it."""
    return os.path.realpath(sys.executable)


def asv(*args: str, env: dict | None = None, cwd: Path = HERE, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [python(), "-m", "asv", *args]
    print("+", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, text=True, capture_output=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if check and out.returncode != 0:
        raise SystemExit(f"asv {args[0]} exited {out.returncode}")
    return out


def write_machine(name: str) -> None:
    subprocess.run([python(), str(HERE / "write_machine.py"), name], check=True)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


# ---- bench ------------------------------------------------------------------------------------------------
def bench(argv: list[str]) -> None:
    """CPU results of the committed HEAD into results/<machine>/, in asv's virtualenv (built from git)."""
    ap = argparse.ArgumentParser(prog="tasks.py bench")
    ap.add_argument("--machine", default=os.environ.get("ASV_MACHINE", platform.node() or "cpu"))
    args, rest = ap.parse_known_args(argv)
    write_machine(args.machine)
    if git("status", "--porcelain", "--untracked-files=no"):
        print("note: uncommitted changes are not measured (asv builds the committed HEAD)", flush=True)
    asv("run", "HEAD^!", "--machine", args.machine, "--show-stderr", *rest, check=False)


# ---- canary -------------------------------------------------------------------------------------------------
TARGET = r"bench_conv\.conv2d\.time_forward"
# Controls: benchmarks the slowdown must leave alone. max_pool2d was one until it read 10-35% apart between
# runs of the same code on the 2-core VM (more than any threshold a 1.25x canary can use); matmul and add stay.
CONTROLS = (r"bench_linalg\.matmul\.time_forward", r"bench_elementwise\.add\.time_forward")


def _selection(dtype: str = "float32") -> list[str]:
    """The target and the controls at the large size, in one dtype ("any" for both)."""
    dt = ".*" if dtype == "any" else f"'{dtype}'"
    sel = []
    for name in (TARGET, *CONTROLS):
        sel += ["-b", rf"^{name}\(.*{dt}, 'large'\)$"]
    return sel


def _canary_conf(tmp: Path) -> Path:
    """A copy of asv.conf.json whose results and html live in a throwaway folder."""
    from asv import util

    conf = util.load_json(str(HERE / "asv.conf.json"), api_version=1, js_comments=True)
    conf.update(version=1, repo=str(ROOT), benchmark_dir=str(HERE / "benchmarks"), results_dir=str(tmp / "results"),
                html_dir=str(tmp / "html"), env_dir=str(tmp / "env"))
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=2))
    return path


def _flagged(compare_output: str) -> set[str]:
    """Rows asv compare marks as changed (+ slower, - faster, x failed, ! became failing), as "mark name"."""
    rows = set()
    for line in compare_output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] in ("+", "-", "x", "!"):
            rows.add(f"{cells[0]} {cells[-1]}")
    return rows


def canary(argv: list[str]) -> None:
    """Same commit measured three times (plain, slowed, plain); asv compare must flag exactly the slowed
    benchmark's rows in plain-vs-slowed and nothing in plain-vs-plain. The labels are the last three commits
    (asv keys results by commit); the results are thrown away, and nothing here uses --quick."""
    ap = argparse.ArgumentParser(prog="tasks.py canary")
    ap.add_argument("--kernel", default="conv2d_forward")
    ap.add_argument("--factor", type=float, default=1.25)
    ap.add_argument("--threshold", type=float, default=1.15,
                    help="asv compare --factor (1.1 was within the VM's run-to-run noise: null runs flagged rows)")
    ap.add_argument("--passes", type=int, default=6, help="interleaved passes (plain, slowed, plain) x N")
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenMP/BLAS threads of the benchmarks (1: a pool whose threads a busy host deschedules "
                         "stalls, and a 2-thread run's noise on a shared 2-core machine exceeds any threshold)")
    ap.add_argument("--repeat", default="(5, 20, 1.0)", help="asv repeat attribute: min samples, max, seconds")
    ap.add_argument("--dtype", default="float32", help="float32, float64 or any: the rows measured (float64 "
                    "NumPy rows were the noisiest on the 2-core VM: 10-20%% between runs of the same code)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="asv rounds per pass: processes per side and benchmark (the noise between processes, "
                         "not within one, is what a 2-core VM has most of)")
    ap.add_argument("--attempts", type=int, default=3,
                    help="independent measurements; the canary fails only if every one fails (a statistical "
                         "gate on a shared machine: one burst of load can fail a run, the same one twice is "
                         "a real problem). Each attempt prints its verdict")
    args = ap.parse_args(argv)
    for attempt in range(1, args.attempts + 1):
        if _canary_once(args):
            print(f"canary: PASS (attempt {attempt} of at most {args.attempts})", flush=True)
            return
        print(f"canary: attempt {attempt} of {args.attempts} FAILED", flush=True)
    raise SystemExit("canary failed: asv did not flag exactly the slowed benchmark in any attempt")


def _canary_once(args: argparse.Namespace) -> bool:
    """One complete measurement (plain, slowed, null sides) and its two verdicts."""
    tmp = HERE / ".asv" / "canary"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    conf = _canary_conf(tmp)
    write_machine("canary")
    plain, slow, null = git("rev-list", "-3", "HEAD").split()
    threads = str(args.threads)
    base_env = {"ASV_PYTHONPATH": str(ROOT), "KEYDNN_BENCH_SLOWDOWN": "", "OMP_NUM_THREADS": threads,
                "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    slowed_env = {**base_env, "KEYDNN_BENCH_SLOWDOWN": f"{args.kernel}:{args.factor}"}
    # Interleaved passes with appended samples: a neighbour's load or a frequency change during the run
    # lands on all three sides alike instead of on whichever side happened to run then.
    # The order goes through all six permutations of the three sides, one per pass: whatever a run inherits
    # from the run before it (a host that slows down after the slowed side's busy minutes, a cold page cache
    # at the start of a pass) lands on each side equally often. A rotation kept the cyclic order, so the null
    # side always ran right after the slowed one, and on CI's machine it read 17-18% slower than the baseline.
    sides = [(plain, base_env), (slow, slowed_env), (null, base_env)]
    orders = list(itertools.permutations(range(3)))
    for i in range(args.passes):
        for label, env in (sides[j] for j in orders[i % len(orders)]):
            asv("run", "--config", str(conf), "-E", f"existing:{python()}", "--set-commit-hash", label,
                "--machine", "canary", "--append-samples", "-a", f"repeat={args.repeat}", "-a", f"rounds={args.rounds}",
                *_selection(args.dtype), env=env)
    verdicts = []
    for name, head, expect in (("slowed", slow, True), ("null", null, False)):
        out = asv("compare", "--config", str(conf), "--machine", "canary", "--split", "--factor",
                  str(args.threshold), plain, head).stdout
        flagged = _flagged(out)
        wanted = {r for r in flagged if r.startswith("+ ") and re.search(TARGET, r)}
        ok = (flagged == wanted and len(wanted) > 0) if expect else not flagged
        verdicts.append(ok)
        print(f"canary {name}: {args.kernel} x{args.factor if expect else 1.0}, threshold {args.threshold}, "
              f"{args.passes} passes, {args.threads} thread(s): "
              f"flagged {sorted(flagged) or 'nothing'} -> {'PASS' if ok else 'FAIL'}", flush=True)
    return all(verdicts)


# ---- dashboard ----------------------------------------------------------------------------------------------
def vendor_page(html_dir: Path = HTML) -> list[str]:
    """Copy the vendored JavaScript/CSS beside index.html, point the page at it, drop integrity attributes
    (they pin the CDN bytes). Fails if the page still names an external script or stylesheet."""
    shutil.copytree(VENDOR, html_dir / "vendor", dirs_exist_ok=True)
    changed = []
    for page in html_dir.glob("*.html"):
        text = page.read_text()
        for url, local in CDN.items():
            text = text.replace(f'"{url}"', f'"vendor/{local}"')
        text = re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", text)
        left = re.findall(r'(?:src|href)="(https?://[^"]+\.(?:js|css))"', text)
        if left:
            raise SystemExit(f"{page.name} still loads {left}: add them to asv_bench/vendor and tasks.CDN")
        page.write_text(text)
        changed.append(page.name)
    return changed


def dashboard(argv: list[str]) -> None:
    machines = sorted(p.parent.name for p in (HERE / "results").glob("*/machine.json"))
    print(f"publishing results of machines: {', '.join(machines) or 'none'}", flush=True)
    asv("publish")
    pages = vendor_page()
    print(f"offline dashboard: {HTML / 'index.html'} ({', '.join(pages)} rewritten to vendor/)")
    print(f"view: python -m http.server -b 127.0.0.1 -d {HTML} 8080")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("bench", "canary", "dashboard"):
        raise SystemExit(__doc__)
    {"bench": bench, "canary": canary, "dashboard": dashboard}[sys.argv[1]](sys.argv[2:])
