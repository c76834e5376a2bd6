"""The walk harness lives in ``controller.testing.walk``; tests import it from here."""
from controller.testing.walk import *  # noqa: F401,F403
