"""The controller runtime (``Runtime``): roles from the topology, their transports, one
executor.  ``root`` is the composition root; see docs/architecture.md."""

from controller.runtime.root import REQUEST_TIMEOUT, Runtime, current, vici_socket

__all__ = ["REQUEST_TIMEOUT", "Runtime", "current", "vici_socket"]
