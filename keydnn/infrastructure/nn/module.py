"""Module: the base of every layer and model. Registers parameters, buffers and child modules by attribute,
and gives recursive traversal, train/eval, state_dict/load_state_dict, config round-trips and ``to``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from keydnn.domain.device._device import Device
from keydnn.domain.errors import SerializationError
from keydnn.infrastructure.autograd import no_grad
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.tensor._tensor import Tensor


class Module:
    """Base class: subclasses set Parameters / Modules as attributes and define ``forward``.

    Registered objects live both in the registry dicts (for traversal and ordering) and in the instance
    ``__dict__`` (so ``self.weight`` in a hot forward is a plain attribute lookup).
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def _registries(self) -> tuple[dict, dict, dict]:
        try:
            return self._parameters, self._buffers, self._modules
        except AttributeError:  # a subclass forgot super().__init__(): fail with a clear message
            raise TypeError(f"{type(self).__name__}: call super().__init__() before assigning attributes") \
                from None

    # ---- registration --------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params, buffers, modules = self._registries()
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in buffers and (value is None or isinstance(value, Tensor)):
            buffers[name] = value
        elif value is None and (name in params or name in modules):
            params.pop(name, None)  # setting None unregisters, as in the seed
            modules.pop(name, None)
        elif name in params or name in modules:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in self._registries():
            registry.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: {name!r} must be a Parameter, "
                            f"got {type(param).__name__}")
        if param is not None:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state but not trained (e.g. running statistics): saved, loaded and moved by
        ``to``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}.register_buffer: {name!r} must be a Tensor")
        params, buffers, modules = self._registries()
        params.pop(name, None)
        modules.pop(name, None)
        buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def register_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.register_module: {name!r} must be a Module, "
                            f"got {type(module).__name__}")
        if module is not None:
            setattr(self, name, module)

    add_module = register_module

    # ---- traversal -----------------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant once, depth first, with dotted names ('' for self)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            kids = [(f"{name}.{n}" if name else n, m) for n, m in mod._modules.items() if m is not None]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _named_members(self, kind: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_name, mod in mods:
            for name, t in getattr(mod, kind).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_name}.{name}" if mod_name else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter): own parameters first, then children's; a shared parameter once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- modes and gradients -------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, device: Any) -> Module:
        """Move every parameter (in place, keeping identity) and buffer to ``device``; returns self."""
        dev = Device(device)
        for p in self.parameters():
            p.move_(dev)
        for m in self.modules():
            for name, b in list(m._buffers.items()):
                if b is not None and b.device is not dev:
                    with no_grad():
                        m._buffers[name] = b.to(dev)
                    object.__setattr__(m, name, m._buffers[name])
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Module:
        return self.to(f"cuda:{index}")

    # ---- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """Name -> tensor for every parameter and persistent buffer (sharing storage with the module)."""
        state = {name: p.detach() for name, p in self.named_parameters()}
        for mod_name, mod in self.named_modules():
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    state[f"{mod_name}.{name}" if mod_name else name] = b.detach()
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy values (Tensors or ndarrays) into parameters and buffers. Every key, shape and dtype is
        checked before anything is written, so a bad state leaves the module untouched."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise SerializationError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                                     f"unexpected keys {unexpected}")
        plan = []
        for name, target in own.items():
            if name not in state:
                continue
            value = state[name]
            arr_shape = tuple(getattr(value, "shape", np.shape(value)))
            arr_dtype = np.dtype(getattr(value, "dtype", np.asarray(value).dtype))
            if arr_shape != target.shape or arr_dtype != target.dtype:
                raise SerializationError(
                    f"{type(self).__name__}.load_state_dict: {name!r} expects shape {target.shape} dtype "
                    f"{target.dtype}, got shape {arr_shape} dtype {arr_dtype}")
            plan.append((name, target, value))
        for name, target, value in plan:
            src = value.to(target.device).data if isinstance(value, Tensor) else \
                kernels_for(target.device).from_host(np.ascontiguousarray(value))
            kernels_for(target.device).copyto(target.data, src)
            self._bump_version(name)

    def _bump_version(self, dotted: str) -> None:
        # state_dict() handed out detached aliases; bump the registered tensor's version so graphs that
        # saved the old values refuse to backpropagate through the overwritten ones
        *path, leaf = dotted.split(".")
        mod = self
        for part in path:
            mod = mod._modules[part]
        t = mod._parameters.get(leaf) if leaf in mod._parameters else mod._buffers.get(leaf)
        t._version += 1

    # ---- config --------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-able values; modules with constructor arguments override this."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Module:
        return cls(**config)

    # ---- calling -------------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
