"""Benchmarks of the reports slice; each writes its figures under ``results/``."""
