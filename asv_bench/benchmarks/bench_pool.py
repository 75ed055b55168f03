"""asv benchmarks of the registry's pool ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("pool", __name__))
