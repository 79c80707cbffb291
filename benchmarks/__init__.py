"""Benchmarks of labelsync against a floor: the simplest correct code doing the same work.

Run ``python -m benchmarks`` (or ``nox -s bench``): it measures the pure core
(`apply_defaults`) and the push job on SQLite, prints a table and writes the
same numbers to ``docs/performance.md``. See ``python -m benchmarks --help``.
"""
