"""JSON checkpoints in the seed's ``keydnn.json.ckpt.v1`` format: an architecture tree of registered module
types and configs, plus base64 state (parameters and persistent buffers, dtypes preserved).

Loading validates the whole file (format, types, configs, every tensor's bytes, shape and dtype against
the target) before writing anything, and reports every problem as a SerializationError.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from keydnn.domain.dtypes import SUPPORTED_DTYPES
from keydnn.domain.errors import SerializationError

if TYPE_CHECKING:  # nn modules import this one to register themselves, so Module is imported lazily
    from keydnn.infrastructure.nn.module import Module

FORMAT = "keydnn.json.ckpt.v1"
_MODULE_REGISTRY: dict[str, type] = {}
_ALLOWED_DTYPES = {np.dtype(n) for n in SUPPORTED_DTYPES}


def register_module(name: str | None = None) -> Callable[[type], type]:
    """Class decorator: make a Module type saveable under ``name`` (default: its class name)."""
    def decorate(cls: type) -> type:
        from keydnn.infrastructure.nn.module import Module
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise TypeError(f"register_module: {cls!r} is not a Module subclass")
        key = name or cls.__name__
        other = _MODULE_REGISTRY.get(key)
        if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
            raise ValueError(f"register_module: {key!r} is already registered to {other.__module__}."
                             f"{other.__qualname__}")
        _MODULE_REGISTRY[key] = cls
        return cls
    return decorate


def registered_modules() -> dict[str, type]:
    return dict(_MODULE_REGISTRY)


def _type_name(module: Module) -> str:
    for key, cls in _MODULE_REGISTRY.items():
        if cls is type(module):
            return key
    raise SerializationError(f"cannot save {type(module).__module__}.{type(module).__qualname__}: it is not "
                             "registered; decorate the class with @register_module() from "
                             "keydnn.infrastructure.serialization")


# ---- architecture ----------------------------------------------------------------------------------
def module_to_config(module: Module) -> dict[str, Any]:
    """{"type", "config", "children"} for ``module`` and, recursively, its children."""
    config = module.get_config()
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{type(module).__name__}.get_config() is not JSON-serialisable: "
                                 f"{exc}") from None
    return {"type": _type_name(module), "config": config,
            "children": {name: module_to_config(child) for name, child in module.named_children()}}


def module_from_config(node: Any, *, device: Any = None, _path: str = "arch") -> Module:
    """Build a module tree from an architecture node; ``device`` overrides saved "device" configs."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise SerializationError(f"{_path}: expected an object with a string 'type'")
    config, children = node.get("config", {}), node.get("children", {})
    if not isinstance(config, dict) or not isinstance(children, dict):
        raise SerializationError(f"{_path}: 'config' and 'children' must be objects")
    cls = _MODULE_REGISTRY.get(node["type"])
    if cls is None:
        raise SerializationError(f"{_path}: unknown module type {node['type']!r}; registered types: "
                                 f"{sorted(_MODULE_REGISTRY)}")
    if device is not None and "device" in config:
        config = {**config, "device": str(device)}
    try:
        module = cls.from_config(config)
    except Exception as exc:  # any constructor failure means the file does not describe a valid model
        raise SerializationError(f"{_path}: cannot build {node['type']} from config {config}: {exc}") from exc
    for name, child_node in children.items():
        child = module_from_config(child_node, device=device, _path=f"{_path}.{name}")
        existing = module._modules.get(name)
        if existing is not None and type(existing) is not type(child):
            raise SerializationError(f"{_path}.{name}: {node['type']} builds a {type(existing).__name__} "
                                     f"here but the checkpoint has a {type(child).__name__}")
        module.register_module(name, child)
    post = getattr(module, "_post_load", None)
    if callable(post):
        post()
    return module


# ---- state -----------------------------------------------------------------------------------------
def encode_array(arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    return {"b64": base64.b64encode(arr.tobytes(order="C")).decode("ascii"), "dtype": arr.dtype.str,
            "shape": list(arr.shape), "order": "C"}


def decode_array(entry: Any, name: str = "?") -> np.ndarray:
    """The array an entry describes, after checking every field; SerializationError otherwise."""
    if not isinstance(entry, dict) or not {"b64", "dtype", "shape"} <= set(entry):
        raise SerializationError(f"state[{name!r}]: expected an object with 'b64', 'dtype' and 'shape'")
    if not isinstance(entry["dtype"], str):
        raise SerializationError(f"state[{name!r}]: dtype must be a string, got {entry['dtype']!r}")
    try:
        dtype = np.dtype(entry["dtype"])
    except (TypeError, ValueError):
        raise SerializationError(f"state[{name!r}]: bad dtype {entry['dtype']!r}") from None
    if dtype.newbyteorder("=") not in _ALLOWED_DTYPES and dtype not in _ALLOWED_DTYPES:
        raise SerializationError(f"state[{name!r}]: unsupported dtype {dtype}")
    shape = entry["shape"]
    # bool is an int in Python (JSON true would pass isinstance(s, int)): refuse it explicitly
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in shape):
        raise SerializationError(f"state[{name!r}]: shape must be a list of non-negative ints, got {shape!r}")
    order = entry.get("order", "C")
    if not isinstance(order, str) or order not in ("C", "F"):
        raise SerializationError(f"state[{name!r}]: order must be 'C' or 'F', got {order!r}")
    try:
        raw = base64.b64decode(entry["b64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise SerializationError(f"state[{name!r}]: 'b64' is not valid base64") from None
    expected = math.prod(shape) * dtype.itemsize  # exact: np.prod(int64) could wrap around
    if len(raw) != expected:
        raise SerializationError(f"state[{name!r}]: {len(raw)} bytes for shape {shape} of {dtype} "
                                 f"(expected {expected})")
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)
    return np.ascontiguousarray(arr.astype(dtype.newbyteorder("="), copy=False))


def extract_state_payload(module: Module) -> dict[str, dict[str, Any]]:
    return {name: encode_array(t.to_numpy()) for name, t in module.state_dict().items()}


def decode_state_payload(payload: Any) -> dict[str, np.ndarray]:
    if not isinstance(payload, dict):
        raise SerializationError("'state' must be an object mapping names to tensors")
    return {name: decode_array(entry, name) for name, entry in payload.items()}


def load_state_payload_(module: Module, payload: Any, *, strict: bool = True) -> None:
    """Decode and check every entry against ``module`` first; then load. Nothing is written on error."""
    module.load_state_dict(decode_state_payload(payload), strict=strict)


# ---- files -----------------------------------------------------------------------------------------
def to_checkpoint(module: Module) -> dict[str, Any]:
    return {"format": FORMAT, "arch": module_to_config(module), "state": extract_state_payload(module)}


def save_json(module: Module, path: str | os.PathLike) -> None:
    """Write ``module`` (a registered type, children registered too) to ``path``; parents are created."""
    checkpoint = to_checkpoint(module)
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(checkpoint, f, indent=2, sort_keys=True)


def _read(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SerializationError(f"{path}: not a KeyDNN checkpoint (format {got!r}, expected {FORMAT!r})")
    if "arch" not in data or "state" not in data:
        raise SerializationError(f"{path}: checkpoint lacks 'arch' or 'state'")
    return data


def from_checkpoint(data: dict[str, Any], *, device: Any = None) -> Module:
    module = module_from_config(data["arch"], device=device)
    load_state_payload_(module, data["state"])
    return module


def load_json(path: str | os.PathLike, *, device: Any = None) -> Module:
    """Rebuild the model saved at ``path`` (on ``device`` if given, else where it was saved)."""
    return from_checkpoint(_read(path), device=device)


def _without_device(config: Any) -> Any:
    """A config with every "device" entry dropped (nested ones too): loading onto another device is fine."""
    if isinstance(config, dict):
        return {k: _without_device(v) for k, v in config.items() if k != "device"}
    return config


def _arch_difference(saved: Any, own: dict[str, Any], path: str = "arch") -> str | None:
    """Where two architecture trees differ (type, config other than "device", children), or None."""
    if not isinstance(saved, dict):
        return f"{path}: expected an object"
    if saved.get("type") != own["type"]:
        return f"{path}: type {saved.get('type')!r} != {own['type']!r}"
    strip = _without_device
    if strip(saved.get("config", {})) != strip(own["config"]):
        return f"{path}: {own['type']} config {strip(saved.get('config'))} != {strip(own['config'])}"
    children = saved.get("children", {})
    if not isinstance(children, dict) or sorted(children) != sorted(own["children"]):
        return f"{path}: children {sorted(children) if isinstance(children, dict) else children!r} != " \
               f"{sorted(own['children'])}"
    for name, child in own["children"].items():
        if (diff := _arch_difference(children[name], child, f"{path}.{name}")) is not None:
            return diff
    return None


def load_json_into(module: Module, path: str | os.PathLike, *, strict: bool = True) -> None:
    """Load the state saved at ``path`` into an existing ``module`` of the same architecture.

    Before ``module`` is touched, the file must describe a buildable model whose state matches its own
    architecture (it is built on the CPU and loaded), and, with ``strict``, that architecture (types,
    configs other than the device, children) must equal ``module``'s."""
    data = _read(path)
    arrays = decode_state_payload(data["state"])
    saved = module_from_config(data["arch"], device="cpu")
    try:
        saved.load_state_dict(arrays, strict=True)
    except SerializationError as exc:
        raise SerializationError(f"{path}: the checkpoint's state does not match its own 'arch': {exc}") from None
    if strict:
        own = json.loads(json.dumps(module_to_config(module)))  # tuples as lists, as in the file
        diff = _arch_difference(data["arch"], own)
        if diff is not None:
            raise SerializationError(f"{path}: the checkpoint's architecture differs from "
                                     f"{type(module).__name__}'s ({diff})")
    module.load_state_dict(arrays, strict=strict)
