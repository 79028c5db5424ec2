"""Benchmarks, run on demand as scripts (each says how in its docstring); pytest skips them."""
