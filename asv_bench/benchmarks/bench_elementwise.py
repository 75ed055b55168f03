"""asv benchmarks of the registry's elementwise ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("elementwise", __name__))
