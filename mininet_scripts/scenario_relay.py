"""The Diameter relays a scenario's topology names (``diameter_relays``, issue 17),
each run as Debian's freeDiameterd (``controller.testing.freediameter``) for the
scenario's duration: started by PID before the controllers, stopped by PID after.

Each relay routes the home realm to the home AAA (which it dials at its configured
listen address) and lets the AAAs of the domains it carries dial it (plain TCP on
loopback; docs/deployment.md "Realms through a Diameter relay")."""

from __future__ import annotations

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


def start(relays: list[FreeDiameterRelay]) -> None:
    if relays and not available():
        raise RuntimeError("the scenario's topology has diameter_relays: install "
                           "freediameterd and freediameter-extensions (./run does)")
    for relay in relays:
        pid = relay.start()
        relay.wait_ready()
        say(f"Diameter relay {relay.host} (freeDiameterd, pid {pid}) on "
            f"{relay.listen[0]}:{relay.listen[1]}")


def stop(relays: list[FreeDiameterRelay]) -> None:
    for relay in relays:
        relay.stop()


def summary(relays: list[FreeDiameterRelay]) -> list[dict[str, Any]]:
    """For the result JSON: which relays ran, with which identity and log."""
    return [{"host": r.host, "realm": r.realm, "listen": f"{r.listen[0]}:{r.listen[1]}",
             "log": str(r.log)} for r in relays]
