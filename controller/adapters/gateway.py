"""The gateway driver interface: what the runtime calls on one gateway's tunnel driver.

A driver (``StrongSwanGateway`` over VICI, ``RecordingGateway`` for the load generator
and the benchmarks) sets and removes tunnel ends and reports what its gateway holds.
Every call blocks; the runtime makes it on the gateway's own worker thread.

``GatewayDriver`` is the required part.  ``GatewayDriverBase`` adds the optional
capabilities with a default each (nothing to warm up, loading = adding, nothing to
adopt, no loaded connections to report, ...); a driver derives from it and overrides
what it can do.  Whether a driver has something to warm up, can tell a tunnel's state,
watch its charon or remove over a second session is a property of the base
(``warms_up``, ``reports_tunnel_state``, ``watches_process``, ``removes_aside``): true
when the driver overrides ``warm_up`` / ``tunnel`` / ``wait_closed`` /
``remove_aside``.  The runtime asks these, never ``hasattr`` or the driver's class.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from controller.core.vpn import TunnelSide


@runtime_checkable
class GatewayDriver(Protocol):
    """The calls the runtime makes on a tunnel driver (blocking, thread-safe)."""

    def add_tunnel(self, side: TunnelSide, timeout: float = 5.0) -> float:
        """Set this gateway's end of a tunnel (and initiate it when ``side.initiator``);
        seconds taken.  Raises ``TunnelError`` / ``OSError``."""
        ...

    def remove_tunnel(self, tunnel_id: str) -> None:
        """Remove this gateway's end (connection, secret, SAs)."""
        ...

    def tunnels(self) -> list[Any]:
        """Every tunnel the gateway holds (objects with ``tunnel_id``, ``established``;
        ``to_json()`` where the driver has it)."""
        ...

    def version(self) -> dict[str, str]:
        """A cheap call that answers while the gateway's daemon lives (health)."""
        ...

    def close(self) -> None:
        ...

    # optional capabilities: ``GatewayDriverBase`` gives each a default

    def dialable(self) -> bool: ...

    def warm_up(self) -> None: ...

    def load_tunnel(self, side: TunnelSide) -> float: ...

    def adopt(self, side: TunnelSide) -> None: ...

    def prepare_tunnel(self, side: TunnelSide, timeout: float = 5.0,
                       child: bool = False) -> float: ...

    def add_prepared(self, side: TunnelSide, timeout: float = 5.0) -> float: ...

    def promote_tunnel(self, side: TunnelSide, timeout: float = 2.0,
                       rekey: bool = False, wait: bool = True, key: bool = True) -> float: ...

    def load_key(self, side: TunnelSide) -> float: ...

    def stand_live(self, side: TunnelSide) -> float | None: ...

    def outranked(self, side: TunnelSide) -> bool: ...

    def remove_aside(self, tunnel_id: str) -> None: ...

    def rekeyed(self, tunnel_id: str) -> bool | None: ...

    def loaded_connections(self) -> dict[str, dict[str, list[str]]]: ...

    def tunnel(self, tunnel_id: str) -> Any | None: ...

    def wait_closed(self, stop: threading.Event) -> bool: ...

    @property
    def warms_up(self) -> bool: ...

    @property
    def removes_aside(self) -> bool: ...

    @property
    def reports_tunnel_state(self) -> bool: ...

    @property
    def watches_process(self) -> bool: ...


class GatewayDriverBase:
    """The optional capabilities of a ``GatewayDriver``, each with its default."""

    def dialable(self) -> bool:
        """False while the gateway cannot be reached at all (e.g. no VICI socket yet):
        the runtime then does not even ask ``version``."""
        return True

    def warm_up(self) -> None:
        """Connect ahead of the first tunnel (default: nothing to warm up)."""

    def load_tunnel(self, side: TunnelSide) -> float:
        """Load an end without initiating it and without touching an SA the gateway
        may hold for it (reconcile).  Default: ``add_tunnel``."""
        add = getattr(self, "add_tunnel")
        return float(add(side))

    def adopt(self, side: TunnelSide) -> None:
        """Take over a tunnel the gateway already holds (default: nothing to take)."""

    def prepare_tunnel(self, side: TunnelSide, timeout: float = 5.0,
                       child: bool = False) -> float:
        """Stand a tunnel up ahead with nothing that steers traffic (strongSwan: the
        IKE_SA without CHILD_SA; ``child``: with a CHILD_SA that does not take the
        traffic until promoted).  Default: nothing to prepare."""
        return 0.0

    def add_prepared(self, side: TunnelSide, timeout: float = 5.0) -> float:
        """``add_tunnel`` of a prepared tunnel, on what ``prepare_tunnel`` stood up.
        Default: ``add_tunnel``."""
        add = getattr(self, "add_tunnel")
        return float(add(side, timeout))

    def promote_tunnel(self, side: TunnelSide, timeout: float = 2.0,
                       rekey: bool = False, wait: bool = True, key: bool = True) -> float:
        """The move onto a prepared tunnel (``prepare_tunnel``'s CHILD_SA made the
        one that carries the traffic; ``rekey``: the end that switches it, called
        after the initiator's; ``wait=False``: only issued, ``rekeyed`` tells when
        it is done; ``key=False``: the move's key is left to ``load_key``, after the
        move).  Default: ``add_prepared`` (nothing for ``rekey``)."""
        return 0.0 if rekey else self.add_prepared(side)

    def load_key(self, side: TunnelSide) -> float:
        """Load ``side``'s key for its next authentication, if a ``promote_tunnel(...,
        key=False)`` left it (no CREATE_CHILD_SA needs it).  Default: nothing left."""
        return 0.0

    def stand_live(self, side: TunnelSide) -> float | None:
        """Keep the tunnel's live CHILD_SA as the standing one of a preparation of the
        same tunnel (``side``: the preparation's, its key loaded for any later IKE_SA),
        as ``prepare_tunnel(child=True)`` would have stood it, if it is installed as
        ``side`` wants it (the key aside).  Returns the seconds until the gateway's own
        rekey of it (which would promote it: the runtime stands it up anew before),
        or None: nothing kept (the runtime removes it and stands one up).  Default:
        None."""
        return None

    def outranked(self, side: TunnelSide) -> bool:
        """Whether another installed SA with ``side``'s selectors is newer than this
        tunnel's (kernel-libipsec sends on the newest of a reqid: this one then carries
        no outbound traffic).  Default: True (nothing to tell)."""
        return True

    def remove_aside(self, tunnel_id: str) -> None:
        """``remove_tunnel`` over a second session of its own, so that it can run on
        another thread beside the driver's other calls (the runtime keeps the calls
        for one tunnel in order).  Only asked when ``removes_aside``.  Default: the
        ordinary removal."""
        remove = getattr(self, "remove_tunnel")
        remove(tunnel_id)

    def rekeyed(self, tunnel_id: str) -> bool | None:
        """A ``promote_tunnel(rekey=True, wait=False)`` of ``tunnel_id`` completed (True),
        is in flight (False), or none is pending (None: the default, nothing issued)."""
        return None

    def loaded_connections(self) -> dict[str, dict[str, list[str]]]:
        """Loaded connections by tunnel id, with peer and selectors where known
        (default: none known)."""
        return {}

    def tunnel(self, tunnel_id: str) -> Any | None:
        """One tunnel's state (``established``), or None if the gateway holds none.
        Only asked when ``reports_tunnel_state``."""
        return None

    def wait_closed(self, stop: threading.Event) -> bool:
        """Block while the gateway's daemon lives: True when it went away, False when
        ``stop`` is set.  Only asked when ``watches_process``."""
        stop.wait()
        return False

    @property
    def warms_up(self) -> bool:
        """The driver has something to do ahead of the first tunnel (``warm_up``)."""
        return type(self).warm_up is not GatewayDriverBase.warm_up

    @property
    def removes_aside(self) -> bool:
        """The driver removes a tunnel over a second session (``remove_aside``)."""
        return type(self).remove_aside is not GatewayDriverBase.remove_aside

    @property
    def reports_tunnel_state(self) -> bool:
        """The driver can tell whether one tunnel is up (else it is assumed up)."""
        return type(self).tunnel is not GatewayDriverBase.tunnel

    @property
    def watches_process(self) -> bool:
        """The driver can block until its daemon dies (``wait_closed``)."""
        return type(self).wait_closed is not GatewayDriverBase.wait_closed
