"""The benchmark canary KEYDNN_BENCH_SLOWDOWN: parsing, the wrapper's cost and results, and that the kernel
tables apply it (in a fresh interpreter, since the setting is read once when the tables are built)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from keydnn.infrastructure.backends import slowdown

ROOT = Path(__file__).resolve().parents[1]


def test_parse():
    assert slowdown.parse(None) is None and slowdown.parse("") is None
    assert slowdown.parse("conv2d_forward:1.25") == ("conv2d_forward", 1.25)
    for bad in ("conv2d_forward", "conv2d_forward:", ":2", "add:0.5", "add:fast", "add:nan"):
        with pytest.raises(ValueError, match="KEYDNN_BENCH_SLOWDOWN"):
            slowdown.parse(bad)


class FakeClock:
    """Time that moves only when read (by ``tick``) or when the fake kernel works (by its duration)."""

    def __init__(self, tick: float = 0.01) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def _kernel(clock: FakeClock, duration: float):
    calls = []

    def kernel(x):
        calls.append(x)
        clock.now += duration
        return x * 2
    return kernel, calls


def test_fractional_factor_spins_for_that_fraction_of_the_call():
    clock = FakeClock()
    kernel, calls = _kernel(clock, 4.0)
    slow = slowdown.slowed(kernel, 1.5, clock=clock)
    assert slow(3) == 6 and calls == [3]  # the result of the one real call; no repeat below factor 2
    assert 4.0 + 0.5 * 4.0 <= clock.now <= 4.0 + 0.5 * 4.0 + 0.1, clock.now


def test_integer_part_repeats_the_call_then_spins_the_rest():
    clock = FakeClock()
    kernel, calls = _kernel(clock, 2.0)
    slow = slowdown.slowed(kernel, 3.25, clock=clock)
    assert slow(4) == 8 and calls == [4, 4, 4]
    assert 3 * 2.0 + 0.25 * 2.0 <= clock.now <= 3 * 2.0 + 0.25 * 2.0 + 0.1, clock.now


def test_wrapping_twice_keeps_one_slowdown():
    kernel, _ = _kernel(FakeClock(), 0.0)
    once = slowdown.slowed(kernel, 2.0)
    assert slowdown.slowed(once, 2.0) is once


def test_apply_wraps_only_the_named_kernel_and_rejects_unknown_names():
    table = SimpleNamespace(name="t", add=lambda a, b: a + b, mul=lambda a, b: a * b)
    mul = table.mul
    slowdown.apply(table, ("add", 1.5))
    assert table.add.__keydnn_slowdown__ == 1.5 and table.mul is mul and table.add(2, 3) == 5
    with pytest.raises(ValueError, match="no kernel 'nope'.*add, mul"):
        slowdown.apply(table, ("nope", 2.0))
    assert slowdown.apply(table, None) is table


def _probe(env_value: str | None, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != slowdown.ENV}
    if env_value is not None:
        env[slowdown.ENV] = env_value
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)


TABLES = ("from keydnn.infrastructure import backends as b; t = b.numpy_table(); n = b.native_table(); "
          "print([getattr(getattr(x, k), '__keydnn_slowdown__', None) for x in (t, n) if x is not None "
          "for k in ('conv2d_forward', 'add')])")


def test_unset_leaves_every_table_untouched():
    out = _probe(None, TABLES)
    assert out.returncode == 0, out.stderr
    assert set(eval(out.stdout)) == {None}


def test_set_slows_that_kernel_in_the_numpy_and_native_tables():
    out = _probe("conv2d_forward:1.25", TABLES)
    assert out.returncode == 0, out.stderr
    got = eval(out.stdout)
    assert got[0::2] == [1.25] * len(got[0::2]) and set(got[1::2]) == {None}


def test_an_unknown_kernel_is_a_clear_error_when_the_table_is_built():
    out = _probe("conv2d_fwd:2", "import keydnn; keydnn.Tensor.from_numpy(__import__('numpy').ones(2)) + 1")
    assert out.returncode != 0 and "no kernel 'conv2d_fwd'" in out.stderr


def test_a_slowed_kernel_still_computes_the_same_result():
    code = ("import numpy as np; from keydnn import Tensor; from keydnn.infrastructure.ops import conv; "
            "r = np.random.default_rng(0); x = Tensor.from_numpy(r.standard_normal((2, 3, 8, 8))); "
            "w = Tensor.from_numpy(r.standard_normal((4, 3, 3, 3))); "
            "print(repr(conv.conv2d(x, w, None, padding=1).numpy().sum()))")
    plain, slow = _probe(None, code), _probe("conv2d_forward:2.5", code)
    assert plain.returncode == 0 and slow.returncode == 0, plain.stderr + slow.stderr
    assert np.float64(eval(plain.stdout)) == np.float64(eval(slow.stdout))
