"""Run a Python function in a fresh network namespace (root only).

Only one userspace Open vSwitch can run per network namespace, and Mininet names, the
controller's loopback ports (Diameter 3868-3870, REST, OpenFlow) and captures on ``lo``
all live in the namespace.  Integration tests that start any of them run their body in
a private one, so concurrent runs on one machine cannot collide::

    from tests.integration.netns import in_netns, run_in_netns

    @needs_root
    @in_netns(timeout=300)
    def test_something(tmp_path):          # fixtures still work
        ...                                # runs in a forked child, own netns, lo up

    result = run_in_netns(some_function, arg, timeout=60)   # returns its result

How: ``os.fork()``; the child calls ``unshare(CLONE_NEWNET)`` (plus ``CLONE_NEWNS``
with private propagation when ``mount_ns=True``), brings ``lo`` up, runs the function,
and sends ``("ok", result)`` or the exception back over a pipe (pickled; if the
exception does not pickle, an ``AssertionError``/``NetnsChildError`` carrying its text).
The parent re-raises it with the child's traceback appended, so a failed ``assert`` in
the child fails the test with pytest's own assertion message.  The child leaves with
``os._exit`` (no pytest/atexit teardown runs twice).  On timeout the child gets SIGTERM
(raised as ``NetnsTimeout`` inside it, so its ``finally:`` blocks clean up what it
started), then SIGKILL after ``grace`` seconds.  Everything the child started in the
namespace must be stopped by the child itself; the namespace disappears with its last
process.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pickle
import select
import signal
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, TypeVar

T = TypeVar("T")

__all__ = ["NetnsChildError", "NetnsTimeout", "in_netns", "run_in_netns", "can_unshare"]


class NetnsChildError(RuntimeError):
    """The child failed with an exception that could not be sent back as itself, or
    died without reporting (signal, ``os._exit``)."""


class NetnsTimeout(Exception):
    """Raised inside the child on SIGTERM (the parent's timeout); in the parent, raised
    when the child did not report in time."""


CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000


def _unshare(flags: int) -> None:
    """unshare(2) (``os.unshare`` only exists from Python 3.12)."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def can_unshare() -> bool:
    """True when this process may create network namespaces (root, not seccomp-denied)."""
    if os.geteuid() != 0:
        return False
    try:
        done = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _child(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
           wfd: int, mount_ns: bool) -> None:
    """Never returns: runs ``fn`` and ``os._exit``s."""
    status = 0
    try:
        def on_term(signum: int, frame: Any) -> None:
            raise NetnsTimeout("terminated by the parent (timeout)")

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _unshare(CLONE_NEWNET | (CLONE_NEWNS if mount_ns else 0))
        if mount_ns:  # our mounts must not leak to the parent namespace
            subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        try:
            payload = pickle.dumps(("ok", fn(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - everything goes to the parent
            tb = traceback.format_exc()
            try:
                payload = pickle.dumps(("err", exc, tb))
                pickle.loads(payload)  # must also unpickle in the parent
            except Exception:  # noqa: BLE001
                kind = "assert" if isinstance(exc, AssertionError) else "other"
                payload = pickle.dumps(("raw", kind, f"{type(exc).__name__}: {exc}", tb))
        with os.fdopen(wfd, "wb") as w:
            w.write(payload)
    except BaseException:  # noqa: BLE001 - could not even report
        traceback.print_exc()
        status = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def run_in_netns(fn: Callable[..., T], *args: Any, timeout: float = 600.0,
                 grace: float = 20.0, mount_ns: bool = False, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a forked child in a new network namespace.

    Returns the (picklable) result; re-raises the child's exception.  ``timeout`` bounds
    the whole call; ``mount_ns`` also gives the child a private mount namespace.
    """
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        _child(fn, args, kwargs, wfd, mount_ns)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    wstatus: int | None = None
    try:
        eof = False
        while wstatus is None:
            if time.monotonic() > deadline:
                break
            if not eof and select.select([rfd], [], [], 0.2)[0]:
                data = os.read(rfd, 1 << 16)
                if data:
                    chunks.append(data)
                    continue
                eof = True
            elif eof:
                time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                wstatus = status
        if wstatus is None:  # timed out: let the child clean up, then kill it
            _terminate(pid, grace)
        if not eof:  # what is left in the pipe (the child has exited)
            while select.select([rfd], [], [], 0)[0]:
                data = os.read(rfd, 1 << 16)
                if not data:
                    break
                chunks.append(data)
    except BaseException:  # Ctrl-C in the parent: don't leave the child behind
        if wstatus is None:
            _terminate(pid, grace)
        raise
    finally:
        os.close(rfd)
    timed_out = wstatus is None
    if timed_out:
        raise NetnsTimeout(f"{_name(fn)} did not finish in {timeout:.0f} s (child killed)")
    if not chunks:
        raise NetnsChildError(f"{_name(fn)}: child died without reporting "
                              f"({_describe(wstatus or 0)})")
    report = pickle.loads(b"".join(chunks))
    if report[0] == "ok":
        return report[1]  # type: ignore[no-any-return]
    if report[0] == "err":
        exc, tb = report[1], report[2]
        _add_note(exc, f"--- in the network-namespace child ---\n{tb}")
        raise exc
    _, kind, text, tb = report
    cls = AssertionError if kind == "assert" else NetnsChildError
    raise cls(f"{text}\n--- in the network-namespace child ---\n{tb}")


def _terminate(pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + grace
    while time.monotonic() < end:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):  # 3.11+: shown after the traceback by pytest
        exc.add_note(note)


def _describe(wstatus: int) -> str:
    if os.WIFSIGNALED(wstatus):
        return f"killed by signal {os.WTERMSIG(wstatus)}"
    return f"exit status {os.WEXITSTATUS(wstatus)}"


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))


def in_netns(func: Callable[..., Any] | None = None, *, timeout: float = 600.0,
             grace: float = 20.0, mount_ns: bool = False) -> Any:
    """Decorator: the test body runs via :func:`run_in_netns`.  Fixtures are resolved
    in the parent and inherited by the forked child (nothing is pickled on the way in);
    only the return value and exceptions travel back."""
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_in_netns(f, *args, timeout=timeout, grace=grace, mount_ns=mount_ns,
                                **kwargs)
        return wrapper
    return wrap(func) if func is not None else wrap
