"""What every role of the core answers, and how the runtime names it.

``Role`` is the base of the role state machines (HA, FA, AAAH, AAAF, CN-GW): it
gives the defaults for what a role does not do, so the runtime calls ``on_tick``,
``on_mip``, ``export_state`` / ``restore_state`` / ``state_keys`` on every role
without probing it (``hasattr``).  A role that is persisted keeps a ``changes`` log
(``controller.core.persist``) and builds its state dicts as tracked ones.

The protocols below name what only some roles answer: the outcome of a Diameter request
(``AsksDiameter``), of an RRQ relayed to a home agent (``RelaysToHomeAgent``), of a
Mobile IPv4 message awaiting a reply (``AwaitsMipReply``), a Diameter answer that came
after its timeout (``TakesLateAnswers``).  ``controller.core.dispatch`` routes through
them; it also has the type checker confirm which role classes satisfy each.

``RoleKey`` is a role's key in the runtime's table of roles: ``"fa:fa1"``,
``"aaaf:domain-a"``, ``"cngw:cngw2"``, or only the kind for the single roles ``"ha"``
and ``"aaah"``.  It is a ``str`` (logs, persistence rows, REST output and every
lookup by the plain string are unchanged) that knows its ``kind`` and ``name``.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from controller.core.actions import Action
from controller.core.persist import Changes

#: the kinds of role, as they appear in role keys
HA, FA, AAAH, AAAF, CNGW = "ha", "fa", "aaah", "aaaf", "cngw"


class RoleKey(str):
    """``RoleKey("fa", "fa1") == "fa:fa1"``; ``RoleKey("ha") == "ha"``."""

    __slots__ = ()

    def __new__(cls, kind: str, name: str = "") -> RoleKey:
        return super().__new__(cls, f"{kind}:{name}" if name else kind)

    def __getnewargs__(self) -> tuple[str]:
        # copy / pickle: the whole key as the kind rebuilds it (``RoleKey("fa:fa1")``
        # is ``"fa:fa1"``; kind and name are read back from the string)
        return (str(self),)

    @classmethod
    def parse(cls, key: str) -> RoleKey:
        """The typed key of a plain one (``"fa:fa1"``)."""
        if isinstance(key, RoleKey):
            return key
        kind, _sep, name = key.partition(":")
        return cls(kind, name)

    @property
    def kind(self) -> str:
        return self.partition(":")[0]

    @property
    def name(self) -> str:
        return self.partition(":")[2]


def kind_of(key: str) -> str:
    """``"fa:fa1"`` -> ``"fa"``; ``"ha"`` -> ``"ha"`` (a plain or typed key)."""
    return key.partition(":")[0]


def name_of(key: str) -> str:
    """``"fa:fa1"`` -> ``"fa1"``; a key without a name (``"ha"``) -> ``""``."""
    return key.partition(":")[2]


class Role:
    """Defaults for what a role does not do.  Every entry point takes ``now`` and
    returns actions (``controller.core.actions``)."""

    #: the persistence keys this role changed (set by a persisted role's __init__)
    changes: Changes

    def on_tick(self, now: float) -> list[Action]:
        """Lifetimes and timers: nothing to expire by default."""
        return []

    def on_mip(self, now: float, raw: bytes, sender: str) -> list[Action]:
        """A Mobile IPv4 message from another role (``sender``: its key): ignored by
        roles that speak no Mobile IPv4 to others."""
        return []

    def export_state(self, key: str) -> dict[str, object] | None:
        """What this role holds for ``key`` as a JSON-able record (None: nothing)."""
        return None

    def restore_state(self, key: str, data: dict[str, Any]) -> None:
        """Take back a record ``export_state`` wrote before a restart."""

    def forget_state(self, key: str) -> None:
        """Drop what this role holds for ``key`` (another replica deleted its record,
        issue 17): no actions; the runtime reconciles tunnels from what is left."""

    def state_keys(self) -> Iterable[str]:
        """Every persistence key this role holds now (for a full re-write)."""
        return ()


# ------------------------------------------------------------------ what some roles answer
# (positional-only: each role names the answer after its kind, ``ama``, ``haa``, ...)


class AsksDiameter(Protocol):
    """Sends Diameter requests and takes their outcome (FA, AAAF, AAAH)."""

    def on_diameter_answer(self, now: float, answer: Any, /) -> list[Action]: ...

    def on_diameter_timeout(self, now: float, session_id: str, /) -> list[Action]: ...


class RelaysToHomeAgent(Protocol):
    """Relays RRQs to home agents and takes their replies (FA)."""

    def on_home_agent_reply(self, now: float, nai: str, raw: bytes, /) -> list[Action]: ...

    def on_home_agent_timeout(self, now: float, nai: str, /) -> list[Action]: ...


class AwaitsMipReply(Protocol):
    """Sends Mobile IPv4 messages that await a reply, e.g. Binding Updates (HA, FA)."""

    def on_mip_reply(self, now: float, to: str, raw: bytes | None, context: object, /
                     ) -> list[Action]: ...


class TakesLateAnswers(Protocol):
    """Takes a Diameter answer that came after its request timed out (FA)."""

    def on_late_diameter_answer(self, now: float, answer: Any, /) -> list[Action]: ...

    def on_late_diameter_answer_dropped(self, answer: Any, /) -> None: ...
