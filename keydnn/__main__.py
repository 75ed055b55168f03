"""``python -m keydnn info``: which kernel libraries loaded, from where, and how they were built."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

import numpy as np


def environment() -> dict[str, Any]:
    from keydnn import __version__
    from keydnn.infrastructure import backends

    info: dict[str, Any] = {"keydnn": __version__, "python": platform.python_version(), "numpy": np.__version__,
                            "machine": platform.machine(), "processor": platform.processor() or "unknown"}
    table = backends.native_table()
    info["cpu_backend"] = backends.cpu_backend_name()
    if table is None:
        info["native_cpu"] = {"loaded": False, "reason": backends._Tables.native_error}
    else:
        from keydnn.infrastructure.backends import native_cpu
        info["native_cpu"] = {"loaded": True, "kernels": list(table.native_kernels), **native_cpu.library_info()}
    try:
        from keydnn.infrastructure.backends import cuda
        if cuda.is_available():
            describe = getattr(cuda, "describe", dict)
            info["cuda"] = {"available": True, "devices": cuda.device_count(), **describe()}
        else:
            info["cuda"] = {"available": False, "reason": cuda.unavailable_reason()}
    except ImportError as exc:
        info["cuda"] = {"available": False, "reason": f"CUDA backend not importable: {exc}"}
    else:
        build = cuda._lib.library_path().with_name("build_info.json")
        entry = json.loads(build.read_text()).get("cuda", {}) if build.exists() else {}
        info["cuda"]["library_built_for"] = entry.get("cuda_arch") or entry.get("reason", "not built")
    return info


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:  # the parity/speedup report has its own options (keydnn/report/cli.py)
        from keydnn.report.cli import main as report_main
        return report_main(argv[1:])
    parser = argparse.ArgumentParser(prog="keydnn", description="KeyDNN utilities")
    parser.add_argument("command", choices=["info", "report"],
                        help="info: report the loaded native libraries; report: parity and speedup report "
                             "(python -m keydnn report --help)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    info = environment()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
