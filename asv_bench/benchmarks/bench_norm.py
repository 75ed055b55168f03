"""asv benchmarks of the registry's norm ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("norm", __name__))
