"""A recording gateway driver: stands in for strongSwan in the load generator, the
benchmarks and the runtime tests (a ``GatewayDriver`` that only records)."""

from __future__ import annotations

import threading
from typing import Any

from controller.adapters.gateway import GatewayDriverBase


class RecordingGateway(GatewayDriverBase):
    """Stands in for a strongSwan gateway: records what would be set (a
    ``GatewayDriver``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.log: list[tuple[str, str]] = []
        self.tunnels_up: dict[str, Any] = {}
        # tunnels a CHILD_SA was ever stood up ahead for (``prepare_tunnel(child=True)``):
        # a set, so that no call searches the log, which grows with every call
        self.stood: set[str] = set()
        # ``stand_live``: whether it keeps a live CHILD_SA standing, the seconds until
        # charon's rekey it answers, the key it was kept with (tunnel -> PSK)
        self.keeps = True
        self.outranks = True      # ``outranked``'s answer
        self.rekey_in = 3600.0
        self.kept_with: dict[str, bytes] = {}
        self.keys: list[tuple[str, bytes]] = []   # ``load_key`` calls: (tunnel, PSK)
        self._lock = threading.Lock()

    def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
        with self._lock:
            self.log.append(("add", side.tunnel_id))
            self.tunnels_up[side.tunnel_id] = side
        return 0.0

    def prepare_tunnel(self, side: Any, timeout: float = 5.0, child: bool = False) -> float:
        with self._lock:
            self.log.append(("stand" if child else "prepare", side.tunnel_id))
            if child:
                self.stood.add(side.tunnel_id)
        return 0.0

    def promote_tunnel(self, side: Any, timeout: float = 2.0, rekey: bool = False,
                       wait: bool = True, key: bool = True) -> float:
        with self._lock:
            stood = side.tunnel_id in self.stood
        if not stood:
            return 0.0 if rekey else self.add_prepared(side, timeout)
        with self._lock:
            self.log.append(("rekey" if rekey else "promote", side.tunnel_id))
            self.tunnels_up[side.tunnel_id] = side
        return 0.0

    def add_prepared(self, side: Any, timeout: float = 5.0) -> float:
        with self._lock:
            self.log.append(("add_prepared", side.tunnel_id))
            self.tunnels_up[side.tunnel_id] = side
        return 0.0

    def stand_live(self, side: Any) -> float | None:
        if not self.keeps:
            return None
        with self._lock:
            self.log.append(("keep", side.tunnel_id))
            self.stood.add(side.tunnel_id)
            self.kept_with[side.tunnel_id] = side.psk
            self.tunnels_up.pop(side.tunnel_id, None)
        return self.rekey_in

    def load_key(self, side: Any) -> float:
        with self._lock:
            self.keys.append((side.tunnel_id, side.psk))
        return 0.0

    def outranked(self, side: Any) -> bool:
        return self.outranks

    def remove_tunnel(self, tunnel_id: str) -> None:
        with self._lock:
            self.log.append(("remove", tunnel_id))
            self.tunnels_up.pop(tunnel_id, None)

    def tunnels(self) -> list[Any]:
        """What it holds, as established SAs (the runtime's gateway reconcile then
        keeps them instead of loading them again)."""
        from types import SimpleNamespace
        with self._lock:
            return [SimpleNamespace(tunnel_id=tid, name=tid, state="ESTABLISHED",
                                    established=True) for tid in self.tunnels_up]

    def loaded_connections(self) -> dict[str, dict[str, list[str]]]:
        """Loaded connections by name; no details (``_conn_matches`` trusts the name)."""
        with self._lock:
            return {tid: {} for tid in self.tunnels_up}

    def version(self) -> dict[str, str]:
        return {"daemon": "recording"}

    def close(self) -> None:
        pass


class CountingGateway(RecordingGateway):
    """A ``RecordingGateway`` that counts the calls it gets instead of logging them
    (``bench.registration``'s server: nothing it keeps grows with the registrations).
    Until 2026-12-06 the benchmark's version left promotions to ``RecordingGateway``,
    whose search of its ever-growing log cost a renewal more the longer the run."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.adds = self.removes = self.promotes = self.rekeys = 0

    def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
        self.adds += 1
        return 0.0

    def promote_tunnel(self, side: Any, timeout: float = 2.0, rekey: bool = False,
                       wait: bool = True, key: bool = True) -> float:
        if rekey:       # the HA's rekey after a promotion
            self.rekeys += 1
        else:           # a move back's (or, before 2026-12-06, a renewal's) add
            self.promotes += 1
        return 0.0

    def add_prepared(self, side: Any, timeout: float = 5.0) -> float:
        self.promotes += 1
        return 0.0

    def remove_tunnel(self, tunnel_id: str) -> None:
        self.removes += 1
