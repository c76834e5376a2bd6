"""What the demo's drivers share with the running demo: its REST API (GET / PUT with the
operator token of the demo serving that URL), waiting for a condition, and the MN
client's events file (JSON lines: which registration, which event before a time).

Used by ``demo.py``, the interactive CLI (``mn_cli.py``), the scenario and experiment
runners; a leaf of ``mininet_scripts`` (it imports none of them), so that the CLI does
not import the demo back.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any


class DemoError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[mipvpn] {msg}", flush=True)


def rest_get(base: str, path: str, timeout: float = 2.0, token: str | None = None) -> Any:
    """GET a REST resource; ``token`` defaults to the token of the running demo."""
    req = urllib.request.Request(base + path)
    token = token or _TOKEN.get(base)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def rest_put(base: str, path: str, body: Any, timeout: float = 5.0,
             token: str | None = None) -> Any:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    token = token or _TOKEN.get(base)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        data = resp.read()
    return json.loads(data) if data else None


_TOKEN: dict[str, str] = {}  # REST base URL -> operator token of the demo serving it


def wait_for(what: str, cond: Any, timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_exc = exc
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}"
                    + (f" (last error: {last_exc})" if last_exc else ""))


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _registered(path: Path, already: int) -> dict[str, Any] | None:
    regs = [e for e in read_events(path) if e["event"] == "registered"]
    return regs[already] if len(regs) > already else None


def _last_before(events: list[dict[str, Any]], name: str, t: float) -> dict[str, Any] | None:
    found = None
    for e in events:
        if e["event"] == name and e["t"] <= t:
            found = e
    return found
