"""Benchmarks: each script measures against a reference in the same run."""
