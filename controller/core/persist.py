"""Role state as plain JSON-able records, for a controller restart (issue 5).

Pure helpers.  Every role that holds per-user state (``controller.core.role.Role``)
says what it saves and restores: ``export_state(key) -> dict | None`` (None: nothing
held for ``key`` any more), ``restore_state(key, data)``, ``state_keys()`` (every key it
holds now) and ``changes`` (a ``Changes``: the keys it changed since the runtime last
took them).  Keys are NAIs (the CN-GW's: home addresses).  The runtime writes one
record per changed key, never a whole-role snapshot, so what a registration costs does
not grow with the number of users (``controller.adapters.state``).

A role builds its state dicts as tracked ones (``TrackedDict``, ``TrackedExpiryDict``,
the FA's ``TrackedVisitorTable``) given its ``Changes``: every entry set or removed
notes its persistence key.  An in-place change of an entry's fields is noted by the
role where it makes it (the HA's set of CN-GWs holding its Binding Update, the old
FA's handoff Identification); the CN-GW's Binding Request counter is harmless to lose
(a restarted CN-GW may send one more Binding Request).

Records hold key material (PSKs, in hex): they go to the 0600 VPN database only and
are never logged.  Times are absolute, in the roles' clock, which in the runtime is
the wall clock (``Runtime.now``): an expiry stored before a restart still fires at the
same moment after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from controller.core.expiry import ExpiryDict


# ------------------------------------------------------------------ change tracking


class ChangeSink(Protocol):
    def note(self, key: str) -> None: ...


class HoldsState(Protocol):
    """What a persisted role answers (``controller.core.role.Role`` gives it to every
    role; named here because role.py imports this module)."""

    def state_keys(self) -> Iterable[str]: ...


class Changes:
    """The persistence keys a role changed since the runtime last ``take``-s them.
    Off (nothing noted) until a state store wants them: the runtime's persistence
    turns it on after restoring, so a role that is not persisted records nothing."""

    __slots__ = ("keys", "on")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.on = False

    def note(self, key: str) -> None:
        if self.on:
            self.keys.add(key)

    def take(self) -> set[str]:
        keys, self.keys = self.keys, set()
        return keys


if TYPE_CHECKING:
    # Tracking is mixed in before a dict class (see below): for the type checker it is
    # one, so ``super()`` and ``self.get`` resolve; at run time it is a plain mixin, and
    # the dict comes from the class it is combined with (the MRO is the same either way).
    _DictMixinBase = dict[Any, Any]
else:
    _DictMixinBase = object


class Tracking(_DictMixinBase):
    """Mixin over a dict (or a dict subclass such as ``ExpiryDict`` / the FA's
    ``VisitorTable``): notes the persistence key of every entry set or removed in
    ``_changes``.  Every mutation goes through the base class's own method
    (``super()``), so the base's indexes and expiry heap stay in step.

    ``_key_of(dict_key, value)`` maps an entry to its persistence key (None: the dict
    key itself; e.g. a forwarding tunnel, keyed by tunnel id, belongs to its MN's NAI).
    A class using it sets both in its ``__init__``."""

    __slots__ = ()
    _changes: ChangeSink
    _key_of: Callable[[Any, Any], str] | None

    def _touch(self, key: Any, value: Any) -> None:
        self._changes.note(self._key_of(key, value) if self._key_of else key)

    def __setitem__(self, key: Any, value: Any) -> None:
        old = self.get(key)
        super().__setitem__(key, value)
        if old is not None and self._key_of is not None:
            self._touch(key, old)
        self._touch(key, value)

    def __delitem__(self, key: Any) -> None:
        value = self[key]
        super().__delitem__(key)
        self._touch(key, value)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            value = super().pop(key)
            self._touch(key, value)
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self._touch(key, value)
        return key, value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        for key in list(self):
            del self[key]


class TrackedDict(Tracking, dict[Any, Any]):
    """A plain dict whose changes are noted in ``changes`` (``Tracking``)."""

    __slots__ = ("_changes", "_key_of")

    def __init__(self, changes: ChangeSink,
                 key_of: Callable[[Any, Any], str] | None = None) -> None:
        dict.__init__(self)
        self._changes = changes
        self._key_of = key_of


class TrackedExpiryDict(Tracking, ExpiryDict[Any, Any]):
    """An ``ExpiryDict`` (``expiry``: as its own) whose changes are noted in
    ``changes`` (``Tracking``)."""

    def __init__(self, changes: ChangeSink, *expiry: Callable[[Any], float],
                 key_of: Callable[[Any, Any], str] | None = None) -> None:
        ExpiryDict.__init__(self, *expiry)
        self._changes = changes
        self._key_of = key_of


def persistable(role_key: str, role: Any) -> bool:
    """A role is persisted when it keeps a log of its changes (``Changes``)."""
    return isinstance(getattr(role, "changes", None), Changes)


def state_keys(role_key: str, role: HoldsState) -> Iterable[str]:
    """Every persistence key ``role`` holds now (for a full re-write)."""
    return role.state_keys()
