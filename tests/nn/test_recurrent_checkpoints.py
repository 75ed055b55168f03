"""Checkpoints of recurrent layers written by the code before the sequence ops (commit 6bbc5fb, by
tests/fixtures/make_recurrent_v1.py) still load, and the loaded layers give the outputs saved with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.infrastructure.recurrent import GRU, LSTM, RNN, Bidirectional
from keydnn.nn import load_json, save_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("name,kind", [("rnn", RNN), ("lstm", LSTM), ("gru", GRU), ("bigru", Bidirectional)])
def test_v1_checkpoint_loads_and_reproduces_its_outputs(name, kind, tmp_path):
    refs = json.loads((FIXTURES / "recurrent_outputs_v1.json").read_text())
    model = load_json(FIXTURES / f"recurrent_{name}_v1.json")
    assert type(model) is kind
    x = Tensor.from_numpy(np.asarray(refs["x"], dtype=np.float32))
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    np.testing.assert_allclose(out.to_numpy(), np.asarray(refs[name], dtype=np.float32), rtol=1e-5, atol=1e-6)
    save_json(model, tmp_path / "again.json")  # and the new code writes it back loadable
    again = load_json(tmp_path / "again.json")
    out2 = again(x)
    out2 = out2[0] if isinstance(out2, tuple) else out2
    np.testing.assert_allclose(out2.to_numpy(), out.to_numpy(), rtol=0, atol=0)
