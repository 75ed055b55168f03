"""The domain: contracts (Protocols), Device, dtype names and errors. Imports neither NumPy nor ctypes."""

from keydnn.domain.device import Device, DeviceType
from keydnn.domain.errors import (
                                  AutogradError,
                                  AxisError,
                                  DeviceMismatchError,
                                  DeviceNotSupportedError,
                                  DTypeError,
                                  IndexingError,
                                  KeyDNNError,
                                  NativeLibraryError,
                                  OpError,
                                  SerializationError,
                                  ShapeError,
)
from keydnn.domain.protocols import IInitializer, ILoss, IModule, IOptimizer, IParameter, ITensor

__all__ = ["AutogradError", "AxisError", "Device", "DeviceMismatchError", "DeviceNotSupportedError",
           "DeviceType", "DTypeError", "IndexingError", "IInitializer", "ILoss", "IModule", "IOptimizer", "IParameter",
           "ITensor", "KeyDNNError", "NativeLibraryError", "OpError", "SerializationError", "ShapeError"]
