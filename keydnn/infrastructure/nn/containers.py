"""Sequential: a Model that applies its child layers in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keydnn.domain.errors import DTypeError
from keydnn.infrastructure.nn.model import Model
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.serialization import register_module


def _tuple_between_layers(name: str, layer: Module, following: Module, out: tuple) -> None:
    """A layer that returns several values (a recurrent layer's output and state) cannot feed the next one;
    say so in one line instead of letting the next layer print the tuple."""
    hint = ""
    if getattr(layer, "return_state", False):
        hint = (f"; build it with return_state=False (e.g. {type(layer).__name__}(..., return_state=False), "
                "and return_sequences=False to keep only the last step)")
    raise DTypeError("Sequential", f"layer {name} ({type(layer).__name__}) returned a tuple of {len(out)} values "
                     f"but the next layer ({type(following).__name__}) takes one tensor{hint}")


@register_module()
class Sequential(Model):
    """``Sequential(*layers)``; children are named "0", "1", ... unless ``add`` is given a name."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for layer in layers:
            self.add(layer)

    def add(self, layer: Module, name: str | None = None) -> None:
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.add: expected a Module, got {type(layer).__name__}")
        name = str(len(self._modules)) if name is None else str(name)
        if name in self._modules or not name or "." in name:
            raise ValueError(f"Sequential.add: layer name {name!r} is already used or invalid")
        self.register_module(name, layer)

    def forward(self, x: Any) -> Any:
        layers = list(self._modules.items())
        for i, (name, layer) in enumerate(layers):
            x = layer(x)
            if isinstance(x, tuple) and i + 1 < len(layers):
                _tuple_between_layers(name, layer, layers[i + 1][1], x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def layers(self) -> tuple[Module, ...]:
        return tuple(self._modules.values())

    def _post_load(self) -> None:
        # JSON writers may sort keys ("10" before "2"): restore numeric order, named layers after
        items = list(self._modules.items())
        numeric = sorted((kv for kv in items if kv[0].isdigit()), key=lambda kv: int(kv[0]))
        self._modules.clear()
        self._modules.update(numeric + [kv for kv in items if not kv[0].isdigit()])

    def summary(self) -> str:
        """A table of layers with their parameter counts and the totals."""
        rows = [("Layer", "Type", "Params")]
        total = 0
        for name, layer in self._modules.items():
            count = sum(p.numel() for p in layer.parameters())
            total += count
            built = getattr(layer, "is_built", True)
            rows.append((name, type(layer).__name__, f"{count:,}" if built else "(unbuilt)"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        fmt = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows]
        return "\n".join([f"{type(self).__name__}", line, fmt[0], line, *fmt[1:], line,
                          f"Total params: {total:,}"])
