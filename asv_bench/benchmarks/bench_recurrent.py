"""asv benchmarks of the registry's recurrent ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("recurrent", __name__))
