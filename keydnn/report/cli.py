"""``python -m keydnn report [--quick] [--device cpu|cuda:N|all] [--out DIR]``: parity and speedup of every
registry op and workload against NumPy and PyTorch, written to reports/<date>_<host>_<sha7>/ (env.json,
parity.csv, speedup.csv, summary.md, report.html). Exits 1 naming the failed parity checks."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keydnn report", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds, smaller ceilings, no heavy workloads")
    p.add_argument("--device", default="cpu", help="cpu, cuda:N or all (CPU plus every CUDA device)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default reports/<date>_<host>_<sha7>)")
    p.add_argument("--threads", type=int, default=None, help="threads for both frameworks (default: all cores)")
    p.add_argument("--ops", default=None, help="comma-separated registry ops (default: all)")
    p.add_argument("--workloads", default=None, help="comma-separated substrings of workload ids (default: all)")
    p.add_argument("--no-torch", action="store_true", help="KeyDNN-only columns")
    p.add_argument("--no-speed", action="store_true", help="parity only")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per workload")
    p.add_argument("--note", default="", help="a line added to the summary (e.g. the machine was shared)")
    return p.parse_args(argv)


def _progress(total: int) -> Any:
    """A tqdm bar on a terminal; one line per step otherwise (logs) or when tqdm is not installed."""
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
            return tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass

    class Lines:
        n = 0

        def update(self, k: int = 1) -> None:
            self.n += k

        def set_description(self, s: str) -> None:
            print(f"[{self.n}/{total}] {s}", file=sys.stderr, flush=True)

        def close(self) -> None:
            pass
    return Lines()


def devices_for(arg: str, left_out: list[str]) -> list[str]:
    """The devices the run covers; CUDA devices that cannot be used are named in ``left_out``."""
    from keydnn.infrastructure.backends import cuda
    if arg == "cpu":
        return ["cpu"]
    want_all = arg == "all"
    if not want_all and not arg.startswith("cuda:"):
        raise SystemExit(f"--device must be cpu, cuda:N or all, got {arg!r}")
    if not cuda.is_available():
        left_out.append(f"CUDA columns: {cuda.unavailable_reason()}")
        return ["cpu"] if want_all else []
    n = cuda.device_count()
    if want_all:
        return ["cpu"] + [f"cuda:{i}" for i in range(n)]
    if int(arg.split(":")[1]) >= n:
        raise SystemExit(f"{arg}: this machine has {n} CUDA device(s)")
    return [arg]


def default_out(git: dict[str, Any]) -> Path:
    sha = (git.get("sha") or "nogit")[:7] + ("-dirty" if git.get("dirty") else "")
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return ROOT / "reports" / f"{day}_{platform.node()}_{sha}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # before the native library or a BLAS starts its pool
    import pandas as pd

    from keydnn.infrastructure.backends import native_table
    from keydnn.infrastructure.registry import all_specs
    from keydnn.report import env, parity, render, speed
    from keydnn.report.torch_side import TorchWorker
    from keydnn.report.workloads import all_workloads

    started = time.time()
    git = env.git_state()  # the code that runs, before anything can change the checkout
    left_out: list[str] = []
    devices = devices_for(args.device, left_out)
    native = native_table() is not None
    if not native:
        from keydnn.infrastructure.backends import _Tables
        left_out.append(f"native CPU columns: library not loaded ({_Tables.native_error})")
    limits = _limit_threads(threads)
    cuda_devices = [d for d in devices if d.startswith("cuda")]
    monitor = env.GpuMonitor(env.cuda_uuids(cuda_devices) if cuda_devices else {})
    worker = TorchWorker(threads, enabled=not args.no_torch)
    if not worker.available:
        left_out.append(f"PyTorch columns: {worker.reason}")
    specs = all_specs()
    if args.ops:
        wanted = set(args.ops.split(","))
        specs = [s for s in specs if s.name in wanted]
    workloads = [] if args.no_speed else [w for w in all_workloads() if not (args.quick and w.heavy)]
    if args.workloads:
        keys = args.workloads.split(",")
        workloads = [w for w in workloads if any(k in w.id for k in keys)]
    if args.quick and any(w.heavy for w in all_workloads()) and not args.no_speed:
        left_out.append("--quick: heavy workloads left out: " + ", ".join(w.name for w in all_workloads() if w.heavy))
    backends = (["numpy", "native"] if native else ["numpy"]) if "cpu" in devices else []
    backends += cuda_devices
    bar = _progress(len(specs) + len(workloads) * len(devices))
    try:
        rows = []
        for spec in specs:
            for dtype in spec.dtypes:
                bar.set_description(f"parity {spec.name} {dtype}")
                rows += parity.check_op(spec, dtype, backends, worker.parity(spec.name, dtype))
            bar.update()
        parity_df = pd.DataFrame(rows, columns=parity.COLUMNS)
        ceilings: dict[str, Any] = {}
        speed_rows: list[dict[str, Any]] = []
        timed: list[tuple[Any, str, dict[str, Any]]] = []
        if workloads:
            for d in devices:
                bar.set_description(f"ceilings {d}")
                ceilings[d] = speed.cpu_ceilings(args.quick) if d == "cpu" else speed.cuda_ceilings(d, args.quick)
            rounds = args.rounds or (5 if args.quick else 15)
            min_time = 0.01 if args.quick else 0.05
            for w in workloads:
                for d in devices:
                    bar.set_description(f"speed {w.name} on {d}")
                    impls = ["keydnn-cuda"] if d != "cpu" else ["keydnn-numpy"] + (["keydnn-native"] if native else [])
                    gpu = d != "cpu"  # GPU batches are short: smaller batches and budget keep a full run brief
                    res = speed.time_workload(w, d, impls, worker, rounds, min_time / 2 if gpu else min_time,
                                              warmup=1 if args.quick else 3,
                                              budget=5.0 if args.quick or gpu else 20.0)
                    timed.append((w, d, res))
                    bar.update()
            for d in devices:
                bar.set_description(f"ceilings {d} again")
                again = speed.cpu_ceilings(args.quick) if d == "cpu" else speed.cuda_ceilings(d, args.quick)
                ceilings[d] = speed.best_ceilings(ceilings[d], again)
            speed_rows = [row for w, d, res in timed for row in speed.rows_for(w, d, res, ceilings[d])]
        speed_df = pd.DataFrame(speed_rows, columns=speed.COLUMNS)
    finally:
        bar.close()
        torch_env = dict(worker.info)
        worker.close()
    stamp = env.host_stamp(threads, git)
    stamp.update(threadpools_torch=torch_env.pop("threadpools", None), torch=torch_env or None,
                 thread_limits=limits, devices=devices, quick=args.quick, left_out=left_out,
                 ceilings=ceilings, seconds=round(time.time() - started, 1), note=args.note,
                 command="python -m keydnn report " + " ".join(argv if argv is not None else sys.argv[2:]))
    stamp["gpu"] = monitor.finish()
    if stamp["gpu"] is None:
        stamp["gpu_reason"] = monitor.reason
    out = args.out or default_out(stamp["git"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "env.json").write_text(json.dumps(stamp, indent=2, default=str) + "\n")
    parity_df.to_csv(out / "parity.csv", index=False)
    speed_df.to_csv(out / "speedup.csv", index=False)
    render.write(out, stamp, parity_df, speed_df)
    if out.resolve().parent == (ROOT / "reports").resolve():
        from keydnn.report import index
        index.write(out.resolve().parent)
    failed = parity_df[~parity_df["passed"].astype(bool)]
    print(f"report written to {out} in {stamp['seconds']:.0f} s")
    for line in left_out:
        print(f"left out: {line}")
    if len(failed):
        names = sorted({f"{r.op} ({r.backend}, {r.dtype}, {r.phase})" for r in failed.itertuples()})
        print(f"PARITY FAILED for {len(names)} check(s): " + ", ".join(names), file=sys.stderr)
        return 1
    print(f"parity: all {len(parity_df)} checks passed")
    return 0


def _limit_threads(threads: int) -> Any:
    """Cap BLAS and OpenMP pools already loaded (threadpoolctl); returns what was set or why not."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed: thread counts set through OMP_NUM_THREADS/OPENBLAS_NUM_THREADS only"
    threadpoolctl.threadpool_limits(threads)
    return {"limit": threads}


if __name__ == "__main__":
    sys.exit(main())
