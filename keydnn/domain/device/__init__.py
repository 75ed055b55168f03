"""Device contracts."""

from keydnn.domain.device._device import CPU, Device, DeviceType

__all__ = ["CPU", "Device", "DeviceType"]
