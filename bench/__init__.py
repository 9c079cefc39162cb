"""`make bench`: the benchmarks of SPEC section 12 (bench/run.py is the entry point)."""
