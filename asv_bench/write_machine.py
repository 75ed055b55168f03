"""Write a complete asv machine entry (name, os, arch, cpu, num_cpu, ram) into ~/.asv-machine.json, keeping
the entries already there: ``asv machine --yes --machine NAME`` stores only the name, and a results
directory whose machine.json lacks the fields shows a blank machine on the dashboard.

    python asv_bench/write_machine.py NAME [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> str:
    try:
        import pynvml
        pynvml.nvmlInit()
        names = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else name)
        pynvml.nvmlShutdown()
        return ", ".join(names)
    except Exception:  # no nvidia-ml-py or no driver: a CPU machine
        return ""


def machine_entry(name: str) -> dict[str, str]:
    ram_kb = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_kb = line.split()[1]
    except OSError:
        pass
    cpu = cpu_model()
    gpus = gpu_names()
    return {"machine": name, "os": f"{platform.system()} {platform.release()}", "arch": platform.machine(),
            "cpu": f"{cpu}; GPU: {gpus}" if gpus else cpu, "num_cpu": str(os.cpu_count()), "ram": ram_kb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--file", type=Path, default=Path("~/.asv-machine.json").expanduser())
    args = ap.parse_args()
    data = json.loads(args.file.read_text()) if args.file.exists() else {}
    data["version"] = 1
    data[args.name] = machine_entry(args.name)
    args.file.write_text(json.dumps(data, indent=4) + "\n")
    print(f"asv machine {args.name!r} -> {args.file}: {data[args.name]}")


if __name__ == "__main__":
    main()
