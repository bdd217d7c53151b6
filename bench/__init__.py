"""Parley benchmarks: ``python -m bench [name ...]``; results go to bench/RESULTS.md by hand."""
