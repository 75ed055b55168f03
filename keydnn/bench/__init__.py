"""Benchmark harness shared by scripts/, asv_bench/ and the reports."""

from keydnn.bench.harness import Timing, environment_stamp, measure, measure_interleaved, paired_ratio

__all__ = ["Timing", "environment_stamp", "measure", "measure_interleaved", "paired_ratio"]
