"""The Diameter relays a scenario's topology names (``diameter_relays``, issue 17),
each run as Debian's freeDiameterd (``controller.testing.freediameter``) for the
scenario's duration: started by PID before the controllers, stopped by PID after.

Each relay routes the home realm to the home AAA (which it dials at its configured
listen address) and lets the AAAs of the domains it carries dial it (plain TCP on
loopback; docs/deployment.md "Realms through a Diameter relay").

freeDiameter 1.2.1 drops loopback addresses from ``ListenOn`` and then needs some
non-loopback address of the machine for its CER/CEA (else it does not start); in a
network namespace with only ``lo`` (the scenario tests run under ``unshare -n``) a
veth pair with one benchmarking-range address (RFC 2544) is added for it, and removed
after."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from controller.testing.freediameter import FreeDiameterRelay, available
from mininet_scripts.demo import say


def relays_for(topo: Any, run_dir: Path) -> list[FreeDiameterRelay]:
    """One ``FreeDiameterRelay`` (not started) per relay of ``topo``."""
    relays = getattr(topo, "diameter_relays", {})
    if not relays:
        return []
    home = next(d for d in topo.domains.values() if d.home_agent is not None and d.aaa)
    dial = home.aaa.listen_host if home.aaa.listen_host not in ("0.0.0.0", "::") \
        else "127.0.0.1"
    return [FreeDiameterRelay(
        run_dir / f"relay-{name}", relay.host, relay.realm,
        (relay.listen_host, relay.listen_port), routes={home.realm: home.aaa.host},
        connect=[(home.aaa.host, dial, home.aaa.listen_port)],
        allow=[topo.domains[d].aaa.host for d in relay.carries])
        for name, relay in sorted(relays.items())]


DUMMY_LINK, DUMMY_ADDRESS = "mipvpn-fd0", "198.18.0.53/32"   # RFC 2544 range


def _has_global_ipv4() -> bool:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


def _add_dummy_address() -> bool:
    """A non-loopback address for freeDiameter when this namespace has none; True when
    one was added (``stop`` removes it)."""
    if _has_global_ipv4():
        return False
    for cmd in (["ip", "link", "add", DUMMY_LINK, "type", "veth", "peer", "name",
                 f"{DUMMY_LINK}p"],                # (no dummy module everywhere)
                ["ip", "addr", "add", DUMMY_ADDRESS, "dev", DUMMY_LINK],
                ["ip", "link", "set", DUMMY_LINK, "up"]):
        subprocess.run(cmd, check=True, capture_output=True)
    say(f"no non-loopback address here: {DUMMY_ADDRESS} on {DUMMY_LINK} for freeDiameterd")
    return True


_added: list[str] = []


def start(relays: list[FreeDiameterRelay]) -> None:
    if relays and not available():
        raise RuntimeError("the scenario's topology has diameter_relays: install "
                           "freediameterd and freediameter-extensions (./run does)")
    if relays and _add_dummy_address():
        _added.append(DUMMY_LINK)
    for relay in relays:
        pid = relay.start()
        relay.wait_ready()
        say(f"Diameter relay {relay.host} (freeDiameterd, pid {pid}) on "
            f"{relay.listen[0]}:{relay.listen[1]}")


def stop(relays: list[FreeDiameterRelay]) -> None:
    for relay in relays:
        relay.stop()
    while _added:
        subprocess.run(["ip", "link", "del", _added.pop()], check=False,
                       capture_output=True)


def summary(relays: list[FreeDiameterRelay]) -> list[dict[str, Any]]:
    """For the result JSON: which relays ran, with which identity and log."""
    return [{"host": r.host, "realm": r.realm, "listen": f"{r.listen[0]}:{r.listen[1]}",
             "log": str(r.log)} for r in relays]
