"""Sequence modules RNN, LSTM and GRU, and the Bidirectional wrapper.

Each layer of a stack is one whole-sequence op (keydnn.infrastructure.ops.recurrent): the input projection of
all steps is one GEMM, the recurrence a loop inside the op and backpropagation through time one backward
call, O(T) in time and memory. Input is time-major (T, N, D) as in the seed, or (N, T, D) with
``batch_first=True``; states are (N, H) for one layer and (num_layers, N, H) for a stack, whatever
``batch_first`` says (as in PyTorch). ``dropout`` applies between the layers of a stack in training mode.
What ``forward`` returns follows the seed's Keras-style flags:

| return_sequences / return_state | RNN, GRU | with keras_compat | LSTM |
|---|---|---|---|
| True / True | ``(h_seq, h_T)`` | same | ``(h_seq, (h_T, c_T))`` |
| False / True | ``h_T`` | ``(h_T, h_T)`` | ``(h_T, (h_T, c_T))`` |
| True / False | ``h_seq`` (T, N, H) | same | same |
| False / False | ``h_T`` (N, H) | same | same |

``h_T`` and ``c_T`` are the last layer's when ``return_sequences=False`` and ``return_state=False``;
otherwise states are (num_layers, N, H) for a stack.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.activation import dropout
from keydnn.infrastructure.ops.recurrent import gru_sequence, lstm_sequence, rnn_sequence
from keydnn.infrastructure.ops.shape import concat, stack, transpose
from keydnn.infrastructure.recurrent._cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
from keydnn.infrastructure.serialization import register_module, registered_modules
from keydnn.infrastructure.tensor._tensor import Tensor

State = Any  # a Tensor (RNN, GRU) or an (h, c) pair of Tensors (LSTM)


class RecurrentLayer(Module):
    """Base of RNN, LSTM and GRU: the cells (children ``cell``, ``cell_1``, ...: one per layer of the stack),
    the return flags and the loop over layers."""

    cell_type: type[RecurrentCell] = RNNCell
    state_parts = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, num_layers: int = 1,
                 dropout: float = 0.0, batch_first: bool = False, return_sequences: bool = True,
                 return_state: bool = True, keras_compat: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.num_layers, self.dropout, self.batch_first = num_layers, float(dropout), bool(batch_first)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.keras_compat = bool(keras_compat)
        for layer in range(num_layers):
            cell = self._make_cell(input_size if layer == 0 else hidden_size, hidden_size, bias, device, dtype)
            setattr(self, self._cell_name(layer), cell)

    def _make_cell(self, input_size: int, hidden_size: int, bias: bool, device: Any, dtype: Any) -> RecurrentCell:
        return self.cell_type(input_size, hidden_size, bias, device, dtype)

    @staticmethod
    def _cell_name(layer: int) -> str:
        return "cell" if layer == 0 else f"cell_{layer}"

    @property
    def cells(self) -> list[RecurrentCell]:
        return [self._modules[self._cell_name(i)] for i in range(self.num_layers)]

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def get_config(self) -> dict[str, Any]:
        cell = self.cell.get_config()
        return {"input_size": cell["input_size"], "hidden_size": cell["hidden_size"], "bias": cell["bias"],
                "num_layers": self.num_layers, "dropout": self.dropout, "batch_first": self.batch_first,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "keras_compat": self.keras_compat, "device": cell["device"], "dtype": cell["dtype"]}

    # ---- checks ----------------------------------------------------------------------------------------
    def _time_major(self, x: Any) -> Tensor:
        name = type(self).__name__
        d = self.input_size
        layout = f"batch-first input (N, T, {d}) (batch_first=True)" if self.batch_first else \
            f"time-major input (T, N, {d}) (batch_first=False)"
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[2] != self.input_size:
            hint = ""
            if isinstance(x, Tensor) and x.ndim == 2:
                hint = "; a single step (N, D) goes to the layer's cell"
            raise ShapeError(name, f"expects {layout}{hint}",
                             *([x] if isinstance(x, Tensor) else []))
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ShapeError(name, f"the sequence is empty: {layout} has a zero time or batch axis", x)
        return transpose(x, 0, 1) if self.batch_first else x

    def _layer_states(self, x: Tensor, state: Any, part: str) -> list[Tensor | None]:
        """One (N, H) state per layer from None, (N, H) (one layer) or (num_layers, N, H)."""
        if state is None:
            return [None] * self.num_layers
        name, batch, h = type(self).__name__, x.shape[1], self.hidden_size
        want = (batch, h) if self.num_layers == 1 else (self.num_layers, batch, h)
        if not isinstance(state, Tensor) or state.shape != want:
            axis = "N, T, D" if self.batch_first else "T, N, D"
            raise ShapeError(name, f"initial {part} must be {want} (num_layers={self.num_layers}, N={batch} from "
                             f"the input ({axis}), H={h})", x, *([state] if isinstance(state, Tensor) else []))
        return [state] if self.num_layers == 1 else [state[i] for i in range(self.num_layers)]

    # ---- the stack (Bidirectional drives it directly) ----------------------------------------------------
    def _run_layer(self, cell: RecurrentCell, x: Tensor, states: tuple, reverse: bool) -> tuple[Tensor, tuple]:
        """(every step's h (T, N, H), (final h,)) of one layer over time-major x."""
        seq = rnn_sequence(x, states[0], cell.W_ih, cell.W_hh, cell.b_ih, cell.b_hh, reverse)
        return seq, (seq[0] if reverse else seq[x.shape[0] - 1],)

    def run(self, x: Tensor, state: State = None, reverse: bool = False) -> tuple[Tensor, State]:
        """(hidden states of the last layer (T, N, H) time-major, final state); ``reverse`` walks time backwards.
        ``x`` is in the layer's layout (``batch_first``); the sequence returned is always time-major."""
        x = self._time_major(x)
        parts = state if self.state_parts > 1 else (state,)
        if parts is None:
            parts = (None,) * self.state_parts
        per_layer = [self._layer_states(x, s, p) for s, p in zip(parts, ("h0", "c0"))]
        finals: list[tuple] = []
        for layer, cell in enumerate(self.cells):
            if layer and self.dropout and self.training:
                x = dropout(x, self.dropout, training=True)
            x, final = self._run_layer(cell, x, tuple(p[layer] for p in per_layer), reverse)
            finals.append(final)
        if self.num_layers == 1:
            out_state = finals[0]
        else:
            out_state = tuple(stack([f[i] for f in finals], 0) for i in range(self.state_parts))
        return x, (out_state if self.state_parts > 1 else out_state[0])

    def _last_hidden(self, seq: Tensor, reverse: bool = False) -> Tensor:
        return seq[0] if reverse else seq[seq.shape[0] - 1]

    def _batch_layout(self, seq: Tensor) -> Tensor:
        return transpose(seq, 0, 1) if self.batch_first else seq

    def forward(self, x: Tensor, h0: State = None) -> Any:
        seq, state = self.run(x, h0)
        return self._outputs(seq, state)

    def _outputs(self, seq: Tensor, state: State) -> Any:
        last = self._last_hidden(seq)
        if not self.return_state:
            return self._batch_layout(seq) if self.return_sequences else last
        if self.return_sequences:
            return self._batch_layout(seq), state
        return (state, state) if self.keras_compat else state


@register_module()
class RNN(RecurrentLayer):
    """``RNN(input_size, hidden_size, bias=True, *, num_layers=1, dropout=0.0, batch_first=False,
    return_sequences=True, return_state=True, keras_compat=False, device=None, dtype=None)``: a tanh RNN;
    ``forward(x, h0=None)``."""

    cell_type = RNNCell


@register_module()
class GRU(RecurrentLayer):
    """``GRU(..., reset_after=False)`` as RNN, with GRU cells; ``reset_after=True`` is PyTorch's form.
    ``forward(x, h0=None)``."""

    cell_type = GRUCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, reset_after: bool = False,
                 **kwargs: Any) -> None:
        object.__setattr__(self, "_reset_after", bool(reset_after))  # read by _make_cell during super().__init__
        super().__init__(input_size, hidden_size, bias, **kwargs)

    @property
    def reset_after(self) -> bool:
        return self.cell.reset_after

    def _make_cell(self, input_size: int, hidden_size: int, bias: bool, device: Any, dtype: Any) -> RecurrentCell:
        return GRUCell(input_size, hidden_size, bias, device, dtype, reset_after=self._reset_after)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}

    def _run_layer(self, cell: RecurrentCell, x: Tensor, states: tuple, reverse: bool) -> tuple[Tensor, tuple]:
        seq = gru_sequence(x, states[0], cell.W_ih, cell.W_hh, cell.b_ih, cell.b_hh, reverse, cell.reset_after)
        return seq, (seq[0] if reverse else seq[x.shape[0] - 1],)


@register_module()
class LSTM(RecurrentLayer):
    """``LSTM(...)`` as RNN, with LSTM cells; ``forward(x, h0=None, c0=None)``; the state is (h, c)."""

    cell_type = LSTMCell
    state_parts = 2

    def _run_layer(self, cell: RecurrentCell, x: Tensor, states: tuple, reverse: bool) -> tuple[Tensor, tuple]:
        steps = x.shape[0]
        out = lstm_sequence(x, states[0], states[1], cell.W_ih, cell.W_hh, cell.b_ih, cell.b_hh, reverse)
        return out[:steps], (out[0] if reverse else out[steps - 1], out[steps])

    def forward(self, x: Tensor, h0: Tensor | None = None, c0: Tensor | None = None) -> Any:
        seq, state = self.run(x, (h0, c0))
        return self._outputs(seq, state)

    def _outputs(self, seq: Tensor, state: State) -> Any:
        if self.return_state and not self.return_sequences:
            return state[0], state
        return super()._outputs(seq, state)


_MERGES = ("concat", "sum", "mul", "ave")


@register_module()
class Bidirectional(Module):
    """``Bidirectional(layer, *, merge_mode='concat', return_sequences=True, return_state=False)``.

    ``layer`` (an RNN, LSTM or GRU) reads the sequence forwards and keeps its weights; a new layer of the same
    config reads it backwards. The two directions' outputs merge as in Keras: ``concat`` on features
    ((T, N, 2H), or (N, 2H) from each direction's last step), ``sum``, ``mul`` or ``ave`` (elementwise).
    ``return_state`` gives ``(out, state_forward, state_backward)``. ``h0`` may be None, one state for both
    directions, or a pair ``(state_forward, state_backward)`` (for an LSTM a state is itself an (h, c) pair).
    With ``num_layers > 1`` each direction runs its own whole stack and only the top layers merge (Keras'
    reading of a wrapped stack), not PyTorch's ``bidirectional=True``, which concatenates after every layer.
    """

    def __init__(self, layer: RecurrentLayer, *, merge_mode: str = "concat", return_sequences: bool = True,
                 return_state: bool = False) -> None:
        super().__init__()
        if not isinstance(layer, RecurrentLayer):
            raise TypeError(f"Bidirectional: expects an RNN, LSTM or GRU layer, got {type(layer).__name__}")
        if merge_mode not in _MERGES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {_MERGES}, got {merge_mode!r}")
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

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        if self.merge_mode == "concat":
            return concat([a, b], axis=a.ndim - 1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        return (a + b) * 0.5

    def forward(self, x: Tensor, h0: State = None) -> Any:
        state_f, state_b = self._states(h0)
        seq_f, state_f = self.forward_layer.run(x, state_f)
        seq_b, state_b = self.backward_layer.run(x, state_b, reverse=True)
        if self.return_sequences:
            out = self.forward_layer._batch_layout(self._merge(seq_f, seq_b))
        else:  # each direction's last step: the forward layer's at t = T-1, the backward layer's at t = 0
            out = self._merge(self.forward_layer._last_hidden(seq_f), self.backward_layer._last_hidden(seq_b, True))
        return (out, state_f, state_b) if self.return_state else out
