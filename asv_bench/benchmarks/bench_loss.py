"""asv benchmarks of the registry's loss ops: one class per op (see _suite.py)."""

from ._suite import family_benchmarks

globals().update(family_benchmarks("loss", __name__))
