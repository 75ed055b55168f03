"""KeyDNN's asv suite: registry ops by family (bench_<family>.py) and whole workloads (bench_workloads.py).
Importing it fails when a registry op has no benchmark."""

from ._suite import check_coverage

check_coverage()
