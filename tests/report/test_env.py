"""The environment stamp's GPU part against an injected fake NVML: UUID matching (not index), fields the GPU
does not support, a throttled run flagged in the summary, and no driver at all."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

pytest.importorskip("pandas")

from keydnn.report import env, render

UUID_A, UUID_B = "GPU-aaaaaaaa-0000-0000-0000-000000000000", "GPU-bbbbbbbb-0000-0000-0000-000000000000"


class NVMLError(Exception):
    pass


class NotSupported(NVMLError):
    def __str__(self) -> str:
        return "Not Supported"


def fake_nvml(throttle_after: int = 0, init_fails: bool = False) -> types.ModuleType:
    """Two GPUs whose NVML order is the reverse of CUDA's; B lacks power readings; B's clock-event reasons
    read ``throttle_after`` from the second reading on."""
    m = types.ModuleType("pynvml")
    m.NVMLError, m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = NVMLError, 1, 2, 0
    devices = [SimpleNamespace(uuid=UUID_B, name="Fake B", reads=0), SimpleNamespace(uuid=UUID_A, name="Fake A",
                                                                                       reads=0)]

    def init():
        if init_fails:
            raise NVMLError("Driver Not Loaded")

    def power(h):
        if h.uuid == UUID_B:
            raise NotSupported()
        return 250_000

    def reasons(h):
        h.reads += 1
        return throttle_after if h.uuid == UUID_B and h.reads > 1 else 0

    m.nvmlInit, m.nvmlShutdown = init, lambda: None
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    m.nvmlDeviceGetUUID = lambda h: h.uuid.encode()  # older bindings return bytes
    m.nvmlDeviceGetName = lambda h: h.name
    m.nvmlSystemGetDriverVersion = lambda: "580.00"
    m.nvmlSystemGetCudaDriverVersion = lambda: 13000
    m.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(total=80 * 2**30, used=2**30)
    m.nvmlDeviceGetClockInfo = lambda h, kind: 1980 if kind == 1 else 2619
    m.nvmlDeviceGetMaxClockInfo = lambda h, kind: 1980
    m.nvmlDeviceGetTemperature = lambda h, kind: 41
    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    m.nvmlDeviceGetCurrentClocksEventReasons = reasons
    return m


def test_devices_are_matched_by_uuid_not_index():
    gpu = env.GpuMonitor({"cuda:0": UUID_A, "cuda:1": UUID_B}, nvml=fake_nvml()).finish()
    assert gpu["devices"]["cuda:0"]["name"] == "Fake A" and gpu["devices"]["cuda:1"]["name"] == "Fake B"
    assert gpu["driver"] == "580.00" and gpu["cuda_driver"] == "13.0"
    a = gpu["devices"]["cuda:0"]
    assert a["before"]["power_w"] == 250.0 and a["after"]["sm_clock_mhz"] == 1980 and not a["throttled"]


def test_unsupported_fields_are_none_and_listed():
    b = env.GpuMonitor({"cuda:1": UUID_B}, nvml=fake_nvml()).finish()["devices"]["cuda:1"]
    for reading in (b["before"], b["after"]):
        assert reading["power_w"] is None and reading["temperature_c"] == 41
        assert reading["unsupported"] == ["power_w: Not Supported"]


def test_a_throttled_run_is_flagged_in_the_summary():
    slow = 0x20 | 0x4  # software thermal slowdown + power cap
    gpu = env.GpuMonitor({"cuda:0": UUID_A, "cuda:1": UUID_B}, nvml=fake_nvml(throttle_after=slow)).finish()
    b = gpu["devices"]["cuda:1"]
    assert b["before"]["throttle_reasons"] == [] and b["after"]["throttle_reasons"] == ["sw_power_cap",
                                                                                     "sw_thermal_slowdown"]
    assert b["throttled"] and not gpu["devices"]["cuda:0"]["throttled"]
    assert env.throttled(gpu) == ["cuda:1"]
    stamp = {"git": {"sha": "abc", "dirty": False}, "cpu": "x", "cores": 2, "host": "h", "platform": "p",
             "python": "3", "numpy": "2", "seconds": 1.0, "quick": True, "devices": ["cuda:1"], "threads": 2,
             "gpu": gpu}
    text = "\n".join(render.header(stamp))
    assert "WARNING: cuda:1 throttled" in text and "cuda:0 throttled" not in text


def test_idle_reason_alone_is_not_throttling():
    gpu = env.GpuMonitor({"cuda:1": UUID_B}, nvml=fake_nvml(throttle_after=0x1)).finish()
    assert gpu["devices"]["cuda:1"]["throttle_reasons_seen"] == ["gpu_idle"]
    assert not gpu["devices"]["cuda:1"]["throttled"]


def test_an_unknown_uuid_is_reported_unmatched():
    gpu = env.GpuMonitor({"cuda:0": "GPU-cccccccc"}, nvml=fake_nvml()).finish()
    assert gpu["devices"]["cuda:0"]["matched"] is False and "GPU-cccccccc" in gpu["devices"]["cuda:0"]["reason"]


def test_no_driver_gives_no_gpu_and_the_reason():
    mon = env.GpuMonitor({"cuda:0": UUID_A}, nvml=fake_nvml(init_fails=True))
    assert mon.finish() is None and "Driver Not Loaded" in mon.reason


def test_the_injected_module_is_what_the_monitor_imports(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    gpu = env.GpuMonitor({"cuda:0": UUID_A}).finish()
    assert gpu["devices"]["cuda:0"]["name"] == "Fake A"


def test_cpu_only_runs_have_no_gpu_block():
    mon = env.GpuMonitor({})
    assert mon.finish() is None and "no CUDA device" in mon.reason


@pytest.mark.parametrize("mask,names", [(0, []), (0x8 | 0x40, ["hw_slowdown", "hw_thermal_slowdown"])])
def test_decode_throttle(mask, names):
    assert env.decode_throttle(mask) == names
