"""asv benchmarks of the registry's shape ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("shape", __name__))
