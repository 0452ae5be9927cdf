"""Benchmarks for `make bench`: medians and ratios against baselines measured in the same run."""
