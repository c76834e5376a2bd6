"""Test doubles and harnesses the tests and the benchmarks share."""
