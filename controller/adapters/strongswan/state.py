"""SA state as charon reports it (VICI ``list-sas``), parsed into typed values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

@dataclass(frozen=True)
class ChildSaState:
    name: str
    state: str            # INSTALLED, REKEYING, ...
    spi_in: str
    spi_out: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int
    unique_id: str = ""   # charon's CHILD_SA unique id (``rekey`` / ``terminate`` by id)
    #: s until charon rekeys it (VICI ``rekey-time``); None: no rekey scheduled
    rekey_in: int | None = None


@dataclass(frozen=True)
class TunnelState:
    """One IKE_SA of a tunnel as charon reports it (``list-sas``)."""

    tunnel_id: str
    state: str                      # IKE_SA state: ESTABLISHED, CONNECTING, ...
    local_address: str
    remote_address: str
    children: tuple[ChildSaState, ...]
    unique_id: str = ""             # charon's IKE_SA unique id

    @property
    def established(self) -> bool:
        """An IKE_SA is up and at least one CHILD_SA is installed."""
        return self.state == "ESTABLISHED" and any(c.state == "INSTALLED"
                                                   for c in self.children)

    @property
    def bytes_in(self) -> int:
        return sum(c.bytes_in for c in self.children)

    @property
    def bytes_out(self) -> int:
        return sum(c.bytes_out for c in self.children)

    @property
    def packets_in(self) -> int:
        return sum(c.packets_in for c in self.children)

    @property
    def packets_out(self) -> int:
        return sum(c.packets_out for c in self.children)


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _i(value: Any) -> int:
    try:
        return int(_s(value) or 0)
    except ValueError:
        return 0


def _strs(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, (bytes, str)):
        return (_s(values),)
    return tuple(_s(v) for v in values)


def _tunnel_state(name: str, ike: dict[str, Any]) -> TunnelState:
    children = []
    for child in (ike.get("child-sas") or {}).values():
        children.append(ChildSaState(
            name=_s(child.get("name")), state=_s(child.get("state")),
            spi_in=_s(child.get("spi-in")), spi_out=_s(child.get("spi-out")),
            local_ts=_strs(child.get("local-ts")), remote_ts=_strs(child.get("remote-ts")),
            bytes_in=_i(child.get("bytes-in")), bytes_out=_i(child.get("bytes-out")),
            packets_in=_i(child.get("packets-in")), packets_out=_i(child.get("packets-out")),
            unique_id=_s(child.get("uniqueid")),
            rekey_in=_i(child["rekey-time"]) if child.get("rekey-time") is not None else None))
    return TunnelState(tunnel_id=name, state=_s(ike.get("state")),
                       local_address=_s(ike.get("local-host")),
                       remote_address=_s(ike.get("remote-host")),
                       children=tuple(children), unique_id=_s(ike.get("uniqueid")))
