"""The secondary-tunnel trick of kernel-libipsec: which installed CHILD_SAs are the
primaries of a secondary tunnel, and rekeying them so that they win again.

A mixin of ``StrongSwanGateway`` (``driver.py``): it uses the driver's ``tunnels``,
``_call``, ``uses_libipsec``, ``_standing``, ``_promoted`` and ``name``.  Also whether a
tunnel's SA is outranked by a newer one with its selectors (``outranked``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from vici.exception import CommandException

from controller.adapters.strongswan.connection import _norm_ts
from controller.adapters.strongswan.session import TunnelError
from controller.adapters.strongswan.state import ChildSaState, TunnelState
from controller.core.vpn import TunnelSide
from controller.logtext import log_text

log = logging.getLogger("mipvpn.strongswan")


class PrimariesMixin:
    """Primaries of a secondary tunnel (kernel-libipsec)."""

    if TYPE_CHECKING:
        name: str
        _standing: set[str]
        _promoted: dict[str, float]

        def tunnels(self) -> list[TunnelState]: ...

        def _call(self, fn: Any, *args: Any) -> Any: ...

        def uses_libipsec(self) -> bool: ...

    def _primary_groups(self, side: TunnelSide) -> list[tuple[str, ...]] | None:
        return self._primary_cover(side)[0]

    def _primary_cover(self, side: TunnelSide) -> tuple[list[tuple[str, ...]] | None, bool]:
        """The secondary's remote selectors grouped as the installed CHILD_SAs with its
        local selectors group them (kernel-libipsec).

        charon shares a reqid only between CHILD_SAs with equal selector lists, and only
        a shared reqid lets the forwarded packets in through the primary's inbound policy
        while the primary's rekey puts its SA first (``_reassert_primaries``).  With a
        tunnel to the HA (home address <-> CN 1) and one to a CN-GW (<-> CN 2), the
        forwarding tunnel's selectors (<-> CN 1, CN 2) equal neither: it becomes one
        CHILD_SA per primary (plus one for selectors no primary has).  None: one.
        Also whether installed primaries cover every remote selector (no new route)."""
        local = {_norm_ts(t) for t in side.local.selectors}
        wanted = [_norm_ts(t) for t in side.remote.selectors]
        groups: list[tuple[str, ...]] = []
        taken: set[str] = set()
        for state in self.tunnels():
            if state.tunnel_id == side.tunnel_id:
                continue
            for child in state.children:
                remote = tuple(_norm_ts(t) for t in child.remote_ts)
                if (child.state == "INSTALLED" and remote
                        and {_norm_ts(t) for t in child.local_ts} == local
                        and set(remote) <= set(wanted) and not set(remote) & taken):
                    groups.append(remote)
                    taken |= set(remote)
        rest = tuple(t for t in wanted if t not in taken)
        covered = bool(groups) and not rest
        if rest:
            groups.append(rest)
        return (groups if len(groups) > 1 else None), covered

    def _reassert_primaries(self, tunnel_id: str, timeout: float = 2.0) -> list[str]:
        """Make every other CHILD_SA with the secondary tunnel's selectors win again.

        kernel-libipsec ignores policy priorities: it takes the first outbound policy in
        order of selector size, newest first among equal ones, and then the *newest*
        outbound SA of that policy's reqid — and charon gives CHILD_SAs with equal
        selectors one reqid.  So the secondary tunnel, set up last, would carry the
        traffic of the primary (measured: the MN's whole uplink went to the old FA).
        Rekeying each primary CHILD_SA makes its SA the newest again; the secondary's
        inbound SA keeps working (its packets pass the shared reqid's inbound policy).
        Waits (``timeout`` in all) for each new CHILD_SA.  Returns the tunnels rekeyed."""
        if not self.uses_libipsec():
            return []
        t0 = time.monotonic()
        states = self.tunnels()

        def key(c: ChildSaState) -> tuple[frozenset[str], frozenset[str]]:
            return (frozenset(_norm_ts(t) for t in c.local_ts),
                    frozenset(_norm_ts(t) for t in c.remote_ts))

        own = {key(c) for st in states if st.tunnel_id == tunnel_id
               for c in st.children if c.state == "INSTALLED"}
        targets = {c.unique_id: st.tunnel_id for st in states  # (none standing ahead)
                   if st.tunnel_id != tunnel_id and st.tunnel_id not in self._standing
                   for c in st.children if c.state == "INSTALLED" and key(c) in own}
        sharing = {st.tunnel_id for st in states if st.tunnel_id != tunnel_id
                   for c in st.children if key(c) in own}
        # one by one, oldest first: their order stays (a smooth handoff's retiring one
        # behind the MN's live one); done when the old one is REKEYED (or gone); none
        # after the deadline (the order would not hold), none after a promotion of a
        # CHILD_SA with these selectors (it has the downlink now: a primary's rekey
        # would take it back to the FA the MN left)
        pending: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        for cid, tid in sorted(targets.items(), key=lambda kv: int(kv[0] or 0)):
            promoted = [t for t in sharing if self._promoted.get(t, -1.0) >= t0]
            if promoted:
                log.info("%s: %s: %s promoted meanwhile, its primaries left as they are",
                         self.name, log_text(tunnel_id), log_text(", ".join(promoted)))
                break
            if time.monotonic() >= deadline:
                pending[cid] = tid
                continue
            try:
                self._call(lambda s, cid=cid: s.rekey({"child-id": cid}))
            except CommandException as exc:
                log.warning("%s: rekeying %s (primary of %s) failed: %s", self.name,
                            log_text(tid), log_text(tunnel_id), log_text(exc))
                pending[cid] = tid
                continue
            while time.monotonic() < deadline and cid in {
                    c.unique_id for st in self.tunnels() for c in st.children
                    if c.state in ("INSTALLED", "REKEYING")}:
                time.sleep(0.002)
            if time.monotonic() >= deadline:
                pending[cid] = tid
        took, names = (time.monotonic() - t0) * 1e3, sorted(set(targets.values()))
        if pending:
            log.warning("%s: %s: primaries not rekeyed in %.0f ms: %s", self.name,
                        log_text(tunnel_id), took,
                        log_text(", ".join(sorted(set(pending.values())))))
        elif targets:
            log.info("%s: %s is secondary: rekeyed %s in %.1f ms", self.name,
                     log_text(tunnel_id), log_text(", ".join(names)), took)
        return names

    def outranked(self, side: TunnelSide) -> bool:
        """Another tunnel's installed CHILD_SA with ``side``'s selectors was made after
        every one of this tunnel's (charon's unique ids grow): kernel-libipsec sends on
        the newest SA of their shared reqid, so this one carries nothing out.  True
        under kernel XFRM (policies, not age, decide there)."""
        if not self.uses_libipsec():
            return True
        try:
            states = self.tunnels()
        except CommandException as exc:
            raise TunnelError(f"{self.name}: listing SAs: {exc}") from exc
        key = ({_norm_ts(t) for t in side.local.selectors},
               {_norm_ts(t) for t in side.remote.selectors})
        mine = [int(c.unique_id or 0) for st in states if st.tunnel_id == side.tunnel_id
                for c in st.children if c.state == "INSTALLED"]
        others = [int(c.unique_id or 0) for st in states if st.tunnel_id != side.tunnel_id
                  for c in st.children if c.state == "INSTALLED"
                  and ({_norm_ts(t) for t in c.local_ts},
                       {_norm_ts(t) for t in c.remote_ts}) == key]
        return bool(mine) and bool(others) and max(others) > max(mine)
