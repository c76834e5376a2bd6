"""Role state as plain JSON-able records, for a controller restart (issue 5).

Pure helpers.  Every role that holds per-user state exposes, as new methods,
``export_state(key) -> dict | None`` (None: nothing held for ``key`` any more) and
``restore_state(key, data)``; keys are NAIs (the CN-GW's: home addresses).  The runtime
writes one record per changed key, never a whole-role snapshot, so what a registration
costs does not grow with the number of users (``controller.adapters.state``).

Which keys changed is seen without touching the roles' code: ``track(role, mark)``
swaps each state dict of a role for a ``TrackedDict`` that reports the persistence key
of every entry set or removed.  In-place changes of an entry's fields are not seen;
the roles make two kinds (the HA's set of CN-GWs holding its Binding Update, the
CN-GW's Binding Request counter) and the runtime covers the first through the marks
those paths return (``MARKS_THAT_CHANGE_STATE``); the second is harmless to lose (a
restarted CN-GW may send one more Binding Request).

Records hold key material (PSKs, in hex): they go to the 0600 VPN database only and
are never logged.  Times are absolute, in the roles' clock, which in the runtime is
the wall clock (``Runtime.now``): an expiry stored before a restart still fires at the
same moment after it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo

#: (role key prefix, Mark phase): marks whose path changed an entry in place.
MARKS_THAT_CHANGE_STATE = {("ha", "back_at_ha"), ("ha", "bu_failed"),
                           ("fa", "handoff_bu_at_old_fa")}


# ------------------------------------------------------------------ codecs


def end_to_dict(end: TunnelEnd) -> dict[str, Any]:
    return {"gateway": end.gateway, "address": end.address,
            "selectors": list(end.selectors)}


def end_from_dict(d: dict[str, Any]) -> TunnelEnd:
    return TunnelEnd(d["gateway"], d["address"], tuple(d["selectors"]))


def tunnel_to_dict(spec: TunnelSpec) -> dict[str, Any]:
    return {"tunnel_id": spec.tunnel_id, "a": end_to_dict(spec.a), "b": end_to_dict(spec.b),
            "psk": spec.psk.hex(), "ike": spec.security.ike, "esp": spec.security.esp,
            "rate_kbps": spec.qos.rate_kbps, "dscp": spec.qos.dscp,
            "initiator": spec.initiator}


def tunnel_from_dict(d: dict[str, Any]) -> TunnelSpec:
    return TunnelSpec(d["tunnel_id"], end_from_dict(d["a"]), end_from_dict(d["b"]),
                      bytes.fromhex(d["psk"]), SecuritySpec(d["ike"], d["esp"]),
                      QosSpec(int(d["rate_kbps"]), int(d["dscp"])), d["initiator"])


def vpn_info_to_dict(info: VpnInfo) -> dict[str, Any]:
    return {"nai": info.nai, "home_address": info.home_address,
            "home_agent": info.home_agent, "foreign_agent": info.foreign_agent,
            "tunnels": [tunnel_to_dict(t) for t in info.tunnels],
            "previous_foreign_agent": info.previous_foreign_agent,
            "smooth_handoff": info.smooth_handoff, "distribution": info.distribution,
            "handoff": tunnel_to_dict(info.handoff) if info.handoff else None}


def vpn_info_from_dict(d: dict[str, Any]) -> VpnInfo:
    return VpnInfo(d["nai"], d["home_address"], d["home_agent"], d["foreign_agent"],
                   tuple(tunnel_from_dict(t) for t in d["tunnels"]),
                   d.get("previous_foreign_agent", ""), bool(d.get("smooth_handoff")),
                   d.get("distribution", "registration"),
                   tunnel_from_dict(d["handoff"]) if d.get("handoff") else None)


# ------------------------------------------------------------------ change tracking


class _Tracking:
    """Mixin over a dict (or a dict subclass such as ``ExpiryDict`` / the FA's
    ``VisitorTable``): calls ``mark(persistence_key)`` for every entry set or removed.
    Every mutation goes through the base class's own method (``super()``), so the
    base's indexes and expiry heap stay in step.

    ``key_of(dict_key, value)`` maps an entry to its persistence key (default: the
    dict key itself; e.g. a forwarding tunnel, keyed by tunnel id, belongs to its
    MN's NAI)."""

    __slots__ = ()
    _mark: Callable[[str], None]
    _key_of: Callable[[Any, Any], str] | None

    def _touch(self, key: Any, value: Any) -> None:
        self._mark(self._key_of(key, value) if self._key_of else key)

    def __setitem__(self, key: Any, value: Any) -> None:
        old = self.get(key)  # type: ignore[attr-defined]
        super().__setitem__(key, value)  # type: ignore[misc]
        if old is not None and self._key_of is not None:
            self._touch(key, old)
        self._touch(key, value)

    def __delitem__(self, key: Any) -> None:
        value = self[key]  # type: ignore[index]
        super().__delitem__(key)  # type: ignore[misc]
        self._touch(key, value)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:  # type: ignore[operator]
            value = super().pop(key)  # type: ignore[misc]
            self._touch(key, value)
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()  # type: ignore[misc]
        self._touch(key, value)
        return key, value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:  # type: ignore[operator]
            self[key] = default
        return self[key]  # type: ignore[index]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        for key in list(self):  # type: ignore[call-overload]
            del self[key]


class TrackedDict(_Tracking, dict):  # type: ignore[type-arg]
    """A plain dict with change tracking (``_Tracking``)."""

    __slots__ = ("_mark", "_key_of")

    def __init__(self, data: dict[Any, Any], mark: Callable[[str], None],
                 key_of: Callable[[Any, Any], str] | None = None) -> None:
        dict.__init__(self, data)
        self._mark = mark
        self._key_of = key_of


_TRACKED_CLASSES: dict[type, type] = {}


def _tracked_class(cls: type) -> type:
    """``cls`` (a dict subclass) with change tracking mixed in, made once per class."""
    if cls not in _TRACKED_CLASSES:
        _TRACKED_CLASSES[cls] = type(f"Tracked{cls.__name__}", (_Tracking, cls), {})
    return _TRACKED_CLASSES[cls]


def tracked(current: dict[Any, Any], mark: Callable[[str], None],
            key_of: Callable[[Any, Any], str] | None = None) -> dict[Any, Any]:
    """``current`` with change tracking: a plain dict is copied into a ``TrackedDict``;
    a dict subclass instance (an ``ExpiryDict``, ``VisitorTable``) keeps its identity,
    its entries and its indexes — only its class gains the tracking mixin."""
    if isinstance(current, _Tracking):
        return current
    if type(current) is dict:
        return TrackedDict(current, mark, key_of)
    current.__class__ = _tracked_class(type(current))
    current._mark = mark  # type: ignore[attr-defined]
    current._key_of = key_of  # type: ignore[attr-defined]
    return current


#: role kind -> [(attribute, persistence key of an entry)] of the state to track.
_TRACKED: dict[str, list[tuple[str, Callable[[Any, Any], str] | None]]] = {
    "ha": [("bindings", None)],
    "aaah": [("sessions", None), ("secrets", None)],
    "aaaf": [("sessions", None)],
    "fa": [("visitors", None), ("departed", None),
           ("handoffs", lambda tid, h: h.nai)],
    "cngw": [("bindings", None)],
}


def kind_of(role_key: str) -> str:
    return role_key.split(":", 1)[0]


def track(role_key: str, role: Any, mark: Callable[[str, str], None]) -> None:
    """Give ``role``'s state dicts change tracking reporting to
    ``mark(role_key, persistence_key)`` (``tracked``)."""
    for attr, key_of in _TRACKED.get(kind_of(role_key), []):
        current = getattr(role, attr, None)
        if isinstance(current, dict) and not isinstance(current, _Tracking):
            setattr(role, attr, tracked(current, lambda k, rk=role_key: mark(rk, k),
                                        key_of))


def persistable(role_key: str, role: Any) -> bool:
    return kind_of(role_key) in _TRACKED and hasattr(role, "export_state")


def state_keys(role_key: str, role: Any) -> Iterable[str]:
    """Every persistence key ``role`` holds now (for a full re-write)."""
    keys: set[str] = set()
    for attr, key_of in _TRACKED.get(kind_of(role_key), []):
        for k, v in getattr(role, attr, {}).items():
            keys.add(key_of(k, v) if key_of else k)
    return keys
