"""Benchmarks: printed tables of speed ratios against a peer measured in the same run."""
