"""Benchmarks of the project's own speed and precision (`make bench`, not part of the tests)."""
