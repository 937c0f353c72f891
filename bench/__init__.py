"""Benchmarks run by ``warroom bench``; their results are kept in ``bench/RESULTS.md``."""
