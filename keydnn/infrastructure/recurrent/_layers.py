"""Sequence modules RNN, LSTM and GRU over time-major input (T, N, D), and the Bidirectional wrapper.

Each runs its cell in a Python loop over ``x[t]`` and stacks the hidden states; autograd carries the
gradient back through time (BPTT). What ``forward`` returns follows the seed's Keras-style flags:

| return_sequences / return_state | RNN, GRU | with keras_compat | LSTM |
|---|---|---|---|
| True / True | ``(h_seq, h_T)`` | same | ``(h_seq, (h_T, c_T))`` |
| False / True | ``h_T`` | ``(h_T, h_T)`` | ``(h_T, (h_T, c_T))`` |
| True / False | ``h_seq`` (T, N, H) | same | same |
| False / False | ``h_T`` (N, H) | same | same |

A step's backward scatters into a zero gradient of the whole input, so one backward pass costs
O(T^2 N D): fine for the short sequences this is meant for, not for long ones.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.shape import concat, stack
from keydnn.infrastructure.recurrent._cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
from keydnn.infrastructure.serialization import register_module, registered_modules
from keydnn.infrastructure.tensor._tensor import Tensor

State = Any  # a Tensor (RNN, GRU) or an (h, c) pair of Tensors (LSTM)


class RecurrentLayer(Module):
    """Base of RNN, LSTM and GRU: the cell (child ``cell``), the return flags and the time loop."""

    cell_type: type[RecurrentCell] = RNNCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, return_sequences: bool = True,
                 return_state: bool = True, keras_compat: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.cell = self.cell_type(input_size, hidden_size, bias, device, dtype)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.keras_compat = bool(keras_compat)

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def get_config(self) -> dict[str, Any]:
        cell = self.cell.get_config()
        return {"input_size": cell["input_size"], "hidden_size": cell["hidden_size"], "bias": cell["bias"],
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "keras_compat": self.keras_compat, "device": cell["device"], "dtype": cell["dtype"]}

    # ---- the time loop (Bidirectional drives it directly) ----------------------------------------------
    def initial_state(self, x: Tensor, state: State) -> State:
        return state

    def step(self, x_t: Tensor, state: State) -> State:
        return self.cell(x_t, state)

    @staticmethod
    def hidden(state: State) -> Tensor:
        return state

    def run(self, x: Tensor, state: State = None, reverse: bool = False) -> tuple[list[Tensor], State]:
        """(hidden state of every step in time order, final state); ``reverse`` walks time backwards."""
        name = type(self).__name__
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[2] != self.input_size:
            raise ShapeError(name, f"expects time-major input (T, N, {self.input_size})", x)
        steps = x.shape[0]
        if steps == 0:
            raise ShapeError(name, "the sequence is empty (T = 0)", x)
        state = self.initial_state(x, state)
        hs: list[Tensor] = [None] * steps  # type: ignore[list-item]
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            state = self.step(x[t], state)
            hs[t] = self.hidden(state)
        return hs, state

    def forward(self, x: Tensor, h0: State = None) -> Any:
        hs, state = self.run(x, h0)
        return self._outputs(hs, state)

    def _outputs(self, hs: list[Tensor], state: State) -> Any:
        last = self.hidden(state)
        if not self.return_state:
            return stack(hs, 0) if self.return_sequences else last
        if self.return_sequences:
            return stack(hs, 0), state
        return (last, last) if self.keras_compat else last


@register_module()
class RNN(RecurrentLayer):
    """``RNN(input_size, hidden_size, bias=True, *, return_sequences=True, return_state=True,
    keras_compat=False, device=None, dtype=None)``: RNNCell over (T, N, D); ``forward(x, h0=None)``."""

    cell_type = RNNCell


@register_module()
class GRU(RecurrentLayer):
    """``GRU(...)`` as RNN, with a GRUCell; ``forward(x, h0=None)``."""

    cell_type = GRUCell


@register_module()
class LSTM(RecurrentLayer):
    """``LSTM(...)`` as RNN, with an LSTMCell; ``forward(x, h0=None, c0=None)``; the state is (h, c)."""

    cell_type = LSTMCell

    def initial_state(self, x: Tensor, state: State) -> State:
        h, c = (None, None) if state is None else state
        return (self.cell.zero_state(x) if h is None else h, self.cell.zero_state(x) if c is None else c)

    def step(self, x_t: Tensor, state: State) -> State:
        return self.cell(x_t, *state)

    @staticmethod
    def hidden(state: State) -> Tensor:
        return state[0]

    def forward(self, x: Tensor, h0: Tensor | None = None, c0: Tensor | None = None) -> Any:
        hs, state = self.run(x, (h0, c0))
        return self._outputs(hs, state)

    def _outputs(self, hs: list[Tensor], state: State) -> Any:
        if self.return_state and not self.return_sequences:
            return state[0], state
        return super()._outputs(hs, state)


@register_module()
class Bidirectional(Module):
    """``Bidirectional(layer, *, merge_mode='concat', return_sequences=True, return_state=False)``.

    ``layer`` (an RNN, LSTM or GRU) reads the sequence forwards and keeps its weights; a new layer of the same
    config reads it backwards. Outputs are concatenated on features: (T, N, 2H), or (N, 2H) from each
    direction's last step; ``return_state`` gives ``(out, state_forward, state_backward)``. ``h0`` may be
    None, one state for both directions, or a pair ``(state_forward, state_backward)`` (for an LSTM a state
    is itself an ``(h, c)`` pair). Only ``merge_mode='concat'`` is implemented.
    """

    def __init__(self, layer: RecurrentLayer, *, merge_mode: str = "concat", return_sequences: bool = True,
                 return_state: bool = False) -> None:
        super().__init__()
        if not isinstance(layer, RecurrentLayer):
            raise TypeError(f"Bidirectional: expects an RNN, LSTM or GRU layer, got {type(layer).__name__}")
        if merge_mode != "concat":
            raise ValueError(f"Bidirectional: merge_mode {merge_mode!r} is not supported (only 'concat')")
        self.merge_mode = merge_mode
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.forward_layer = layer
        self.backward_layer = type(layer).from_config(layer.get_config())

    @property
    def forward_rnn(self) -> RecurrentLayer:  # the seed's second name for each direction
        return self.forward_layer

    @property
    def backward_rnn(self) -> RecurrentLayer:
        return self.backward_layer

    def get_config(self) -> dict[str, Any]:
        return {"merge_mode": self.merge_mode, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "layer_type": type(self.forward_layer).__name__,
                "layer": self.forward_layer.get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        config = dict(config)
        layer_type, layer_config = config.pop("layer_type"), config.pop("layer")
        layer_cls = registered_modules().get(layer_type)
        if layer_cls is None or not issubclass(layer_cls, RecurrentLayer):
            raise ValueError(f"Bidirectional: unknown recurrent layer type {layer_type!r}")
        return cls(layer_cls.from_config(layer_config), **config)

    def _states(self, h0: State) -> tuple[State, State]:
        if h0 is None:
            return None, None
        if isinstance(self.forward_layer, LSTM):
            pair = isinstance(h0, (tuple, list)) and len(h0) == 2 and all(isinstance(s, (tuple, list)) for s in h0)
        else:
            pair = isinstance(h0, (tuple, list))
        return (h0[0], h0[1]) if pair else (h0, h0)

    def forward(self, x: Tensor, h0: State = None) -> Any:
        state_f, state_b = self._states(h0)
        hs_f, state_f = self.forward_layer.run(x, state_f)
        hs_b, state_b = self.backward_layer.run(x, state_b, reverse=True)
        if self.return_sequences:
            out = concat([stack(hs_f, 0), stack(hs_b, 0)], axis=2)
        else:  # each direction's last step: the forward layer's at t = T-1, the backward layer's at t = 0
            out = concat([hs_f[-1], hs_b[0]], axis=1)
        return (out, state_f, state_b) if self.return_state else out
