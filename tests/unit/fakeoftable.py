"""Moved to :mod:`controller.testing.fakeoftable` (the benchmarks use it too); this name
stays for the tests that import it from here."""

from controller.testing.fakeoftable import *  # noqa: F401,F403
from controller.testing.fakeoftable import AmbiguousMatch, FakeOFTable  # noqa: F401
