"""Test helpers of the mipvpn package (fakes and the walk harness), used by the unit
tests and the benchmarks; imported by no production module."""
