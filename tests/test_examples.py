"""examples/train_digits.py (``nox -s digits``): the test accuracy comes from images used for neither
training nor validation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
ROOT = Path(__file__).resolve().parent.parent


def _load_example():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_split_is_three_disjoint_sets_covering_every_image():
    train, val, test = _load_example().split(1797, 0.15, 0.15, seed=0)
    assert (len(train), len(val), len(test)) == (1257, 270, 270)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(1797))


@pytest.mark.parametrize("val, test", [(0.0, 0.2), (0.5, 0.5), (0.2, -0.1)])
def test_digits_split_rejects_fractions_that_leave_a_set_empty(val, test):
    with pytest.raises(ValueError, match="fractions"):
        _load_example().split(100, val, test, seed=0)


def test_digits_example_reports_test_accuracy_on_unseen_images(tmp_path, capsys):
    result = _load_example().main(["--epochs", "3", "--checkpoint", str(tmp_path / "digits.json")])
    out = capsys.readouterr().out
    assert "1257 training, 270 validation and 270 test images" in out
    assert "test accuracy:" in out and "used for neither training nor validation" in out
    assert result["test_accuracy"] > 0.85 and result["reloaded_identical"] == 1.0
