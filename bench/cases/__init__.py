"""Benchmark cases, one module per concern."""
