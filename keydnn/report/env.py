"""The report's environment stamp (env.json): CPU, versions, BLAS/OpenMP runtimes, the native build manifest,
git state, and each GPU through nvidia-ml-py (``pynvml``), matched to KeyDNN's CUDA device by UUID."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from keydnn.bench.harness import _cpu_model

ROOT = Path(__file__).resolve().parents[2]
BUILD_INFO = ROOT / "keydnn" / "_native" / "build_info.json"

# NVML clock-event (throttle) reason bits; the ones that mean the GPU ran slower than it could.
THROTTLE_BITS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                 0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
                 0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}
SLOWING = {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}


def threadpools() -> list[dict[str, Any]]:
    """OpenMP and BLAS runtimes loaded in this process (threadpoolctl), or one entry saying it is missing."""
    try:
        import threadpoolctl
    except ImportError:
        return [{"error": "threadpoolctl not installed (pip install threadpoolctl)"}]
    keep = ("user_api", "internal_api", "prefix", "filepath", "version", "num_threads", "threading_layer")
    return [{k: d.get(k) for k in keep} for d in threadpoolctl.threadpool_info()]


def git_state(root: Path = ROOT) -> dict[str, Any]:
    """HEAD and whether tracked files changed; a copy without .git may name its commit in KEYDNN_GIT_SHA."""
    given = os.environ.get("KEYDNN_GIT_SHA")
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            if given:
                return {"sha": given, "dirty": None, "reason": "from KEYDNN_GIT_SHA (not a git checkout)"}
            return {"sha": None, "dirty": None, "reason": sha.stderr.strip() or "not a git checkout"}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as exc:  # no git at all (the images install none)
        if given:
            return {"sha": given, "dirty": None, "reason": f"from KEYDNN_GIT_SHA (git unavailable: {exc})"}
        return {"sha": None, "dirty": None, "reason": f"git unavailable: {exc}"}


def native_manifest() -> dict[str, Any] | None:
    return json.loads(BUILD_INFO.read_text()) if BUILD_INFO.exists() else None


def host_stamp(threads: int, git: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything about the host side of this process (call after NumPy and the native library loaded)."""
    import numpy as np

    from keydnn.__main__ import environment

    keydnn_env = environment()
    return {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
            "threads": threads, "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "keydnn": keydnn_env, "native_build": native_manifest(), "git": git or git_state(),
            "threadpools_keydnn": threadpools()}


# ---- GPUs through NVML ---------------------------------------------------------------------------------
def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _field(nvml: Any, out: dict, unsupported: list, name: str, fn: Any) -> None:
    """Read one NVML field; a field the GPU or driver does not support becomes None and is listed."""
    try:
        out[name] = fn()
    except nvml.NVMLError as exc:
        out[name] = None
        unsupported.append(f"{name}: {_text(str(exc))}")


def decode_throttle(mask: int | None) -> list[str]:
    if mask is None:
        return []
    return [name for bit, name in THROTTLE_BITS.items() if mask & bit]


def sample_gpu(nvml: Any, handle: Any) -> dict[str, Any]:
    """One reading of a GPU's clocks, temperature, power, memory and throttle reasons."""
    out: dict[str, Any] = {}
    miss: list[str] = []
    _field(nvml, out, miss, "sm_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
    _field(nvml, out, miss, "mem_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM))
    _field(nvml, out, miss, "sm_clock_max_mhz",
           lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM))
    _field(nvml, out, miss, "temperature_c",
           lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
    _field(nvml, out, miss, "power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
    _field(nvml, out, miss, "power_limit_w", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
    _field(nvml, out, miss, "memory_used_gib", lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**30)
    reasons = (getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
               or nvml.nvmlDeviceGetCurrentClocksThrottleReasons)
    _field(nvml, out, miss, "throttle_mask", lambda: int(reasons(handle)))
    out["throttle_reasons"] = decode_throttle(out["throttle_mask"])
    out["unsupported"] = miss
    return out


def _handles_by_uuid(nvml: Any) -> dict[str, Any]:
    return {_text(nvml.nvmlDeviceGetUUID(h)): h
            for h in (nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount()))}


class GpuMonitor:
    """Static facts and a 'before' sample at construction, an 'after' sample at ``finish()``, per CUDA device
    KeyDNN uses (``uuids``: device name -> UUID from the CUDA runtime)."""

    def __init__(self, uuids: dict[str, str], nvml: Any = None) -> None:
        self.devices: dict[str, dict[str, Any]] = {}
        self.reason: str | None = None
        self.nvml = nvml
        if not uuids:
            self.reason = "no CUDA device selected or usable in this run"
            return
        if self.nvml is None:
            try:
                import pynvml as nvml_module
            except ImportError:
                self.reason = "nvidia-ml-py (pynvml) not installed"
                return
            self.nvml = nvml_module
        nvml = self.nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            self.reason = f"NVML unavailable (no driver?): {_text(str(exc))}"
            return
        self.common = {"driver": None, "cuda_driver": None}
        try:
            self.common["driver"] = _text(nvml.nvmlSystemGetDriverVersion())
            v = nvml.nvmlSystemGetCudaDriverVersion()
            self.common["cuda_driver"] = f"{v // 1000}.{v % 1000 // 10}"
        except nvml.NVMLError:
            pass
        by_uuid = _handles_by_uuid(nvml)
        self._handles = {}
        for dev, uuid in uuids.items():
            h = by_uuid.get(uuid)
            if h is None:
                self.devices[dev] = {"uuid": uuid, "matched": False,
                                     "reason": f"no NVML device has UUID {uuid} (NVML saw {sorted(by_uuid)})"}
                continue
            self._handles[dev] = h
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            self.devices[dev] = {"uuid": uuid, "matched": True, "name": _text(nvml.nvmlDeviceGetName(h)),
                                 "memory_total_gib": mem.total / 2**30, "before": sample_gpu(nvml, h)}

    def finish(self) -> dict[str, Any] | None:
        """The ``gpu`` block of env.json (None when there is no GPU; see ``reason``)."""
        if not self.devices:
            return None
        for dev, h in self._handles.items():
            d = self.devices[dev]
            d["after"] = sample_gpu(self.nvml, h)
            seen = set(d["before"]["throttle_reasons"]) | set(d["after"]["throttle_reasons"])
            d["throttled"] = bool(seen & SLOWING)
            d["throttle_reasons_seen"] = sorted(seen)
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass
        return {**self.common, "devices": self.devices}


def cuda_uuids(devices: list[str]) -> dict[str, str]:
    from keydnn.infrastructure.backends.cuda import _cudart
    return {d: _cudart.device_uuid(int(d.split(":")[1])) for d in devices}


def throttled(gpu: dict[str, Any] | None) -> list[str]:
    return [dev for dev, d in (gpu or {}).get("devices", {}).items() if d.get("throttled")]
