"""Benchmark suites: run many (instance, model, solver) jobs on Dask, store, resume, report."""
