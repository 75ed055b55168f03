"""asv benchmarks of the registry's conv ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("conv", __name__))
