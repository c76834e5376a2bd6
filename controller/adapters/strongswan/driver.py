"""The VICI driver: ``StrongSwanGateway``, the controller-side driver for one gateway.

It turns a ``TunnelSide`` into a VICI connection + shared secret, initiates it, tears it
down and reports SA state as typed ``TunnelState`` values.

The pre-shared key is never logged and never put in an exception message.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import vici
from vici.exception import CommandException

from controller.adapters.gateway import GatewayDriverBase
from controller.adapters.strongswan import teardown
from controller.adapters.strongswan.anchors import SelectorAnchors
from controller.adapters.strongswan.connection import (_secret_id,
                                                       connection_for, secret_for)
from controller.adapters.strongswan.primaries import PrimariesMixin
from controller.adapters.strongswan.session import TunnelError, ViciSessions
from controller.adapters.strongswan.state import (TunnelState, _s, _strs,
                                                  _tunnel_state)
from controller.core.vpn import TunnelSide
from controller.logtext import log_text

log = logging.getLogger("mipvpn.strongswan")


class StrongSwanGateway(PrimariesMixin, ViciSessions, GatewayDriverBase):
    """Controller-side driver of one gateway's charon over VICI, thread-safe: one main
    session, one for removals off a move's path (``remove_aside``)."""

    def dialable(self) -> bool:
        """charon's VICI socket exists (the gateway's charon has started)."""
        return Path(self.vici_socket_path).exists()

    def __init__(self, name: str, vici_socket_path: str | os.PathLike[str],
                 netns: str | None = None, connect_timeout: float = 2.0) -> None:
        """``netns``: path of the gateway's network namespace (``/proc/<pid>/ns/net``);
        local selectors the gateway has no address in get anchors there (see
        ``SelectorAnchors``) — required with kernel-libipsec for such selectors.  When
        omitted, the path ``CharonProcess`` wrote next to the VICI socket (file
        ``netns``) is used, read at the first ``add_tunnel``; if neither exists, no
        anchors are made."""
        self.name = name
        self.vici_socket_path = str(vici_socket_path)
        self.connect_timeout = connect_timeout
        self._init_sessions()
        self._anchor_lock = threading.RLock()   # ``_anchored``, ``_anchors``
        self._netns = netns
        self._anchors: SelectorAnchors | None = None
        self._anchored: dict[str, list[str]] = {}
        self._libipsec: bool | None = None     # charon runs kernel-libipsec (cached)
        # issue 14: tunnel id -> (load-conn message, PSK) this driver last loaded, and
        # the tunnels prepared (IKE_SA, no CHILD_SA yet) whose add can reuse that load
        self._loaded: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._childless: set[str] = set()
        self._standing: set[str] = set()   # CHILD_SA stood up ahead, not yet promoted
        # responder ends of a move back promoted on their live CHILD_SA: the initiator's
        # promotion has this end rekeyed, as for a standing one
        self._relive: set[str] = set()
        self._promoted: dict[str, float] = {}   # tunnel -> its promotion's rekey began
        self._rekeying: dict[str, set[str]] = {}   # tunnel -> CHILD_SAs its rekey replaces

    def warm_up(self) -> None:
        """Open the VICI session and the namespace controller now, not on the first
        tunnel: entering the gateway's namespace forks a helper process, which costs
        from tens to hundreds of milliseconds on a busy machine (measured up to
        580 ms) — time that would otherwise land inside a handover."""
        self.version()
        self._call(lambda s: None, aside=True)
        with self._anchor_lock:
            self._anchor_ctl()

    def _anchor_ctl(self) -> SelectorAnchors | None:
        if self._anchors is None:
            path = self._netns
            if path is None:
                hint = Path(self.vici_socket_path).parent / "netns"
                path = hint.read_text().strip() if hint.exists() else None
            if path and os.path.exists(path):
                self._anchors = SelectorAnchors(path)
        return self._anchors

    def close(self) -> None:
        self._close_sessions()
        with self._anchor_lock:
            if self._anchors is not None:
                self._anchors.close()
                self._anchors = None

    def version(self) -> dict[str, str]:
        raw = self._call(lambda s: s.version())
        return {k: _s(v) for k, v in raw.items()}

    # -- tunnels

    def add_tunnel(self, side: TunnelSide, timeout: float = 5.0,
                   keep_sa: bool = False, standing: bool = False) -> float:
        """Load (or replace) a tunnel; when ``side.initiator``, bring its CHILD_SA up.

        Blocks until the CHILD_SA is installed; raises ``TunnelError`` on failure or after
        ``timeout`` seconds.  Returns the seconds taken.  ``keep_sa``: do not terminate
        an SA charon holds for the tunnel (``load_tunnel``); ``standing``: its CHILD_SA
        stands ahead of the MN (``prepare_tunnel(child=True)``).
        """
        t0 = time.monotonic()
        tid = side.tunnel_id
        groups, covered = (self._primary_cover(side) if side.secondary and side.initiator
                           and self.uses_libipsec() else (None, False))
        conn = connection_for(side, remote_groups=groups)
        secret = secret_for(side)
        # issue 14: on a prepared IKE_SA whose connection this driver loaded as it is
        # now, the move loads nothing again; the initiator loads a new PSK only after
        # its CHILD_SA (CREATE_CHILD_SA does not authenticate: docs/security.md)
        loaded = self._loaded.get(tid)
        ahead = keep_sa and tid in self._childless and loaded is not None \
            and loaded[0] == conn
        new_psk = loaded is None or loaded[1] != side.psk
        later = ahead and new_psk and side.initiator
        self._childless.discard(tid)
        if standing:
            self._standing.add(tid)
        else:
            self._standing.discard(tid)

        def load(session: vici.Session) -> None:
            if not keep_sa and self._has_sa(session, tid):   # replace: drop old SAs
                self._terminate(session, tid)
            if not ahead or (new_psk and not later):
                session.load_shared(secret)
            if not ahead:
                session.load_conn(conn)

        def load_all(session: vici.Session) -> None:
            session.load_shared(secret)
            session.load_conn(conn)

        with self._anchor_lock:
            old = self._anchored.pop(tid, [])
            ctl = self._anchor_ctl()
            # a secondary whose selectors installed primaries already hold (their
            # routes, refcounted) needs no local route for the MN's home address: with
            # it, the new FA would swallow the MN's downlink while the secondary comes
            # up (measured: 30-66 packets per smooth handoff)
            anchors = (ctl.acquire(side.local.selectors, restore_local=not covered)
                       if ctl else [])
            self._anchored[tid] = anchors
            if self._anchors is not None:
                self._anchors.release(old)
        try:
            self._call(load)
        except CommandException as exc:
            self._loaded.pop(tid, None)
            raise TunnelError(f"{self.name}: loading tunnel {tid} failed: {exc}") from exc
        self._loaded[tid] = (conn, b"" if later else side.psk)

        if not side.initiator:
            if anchors or side.secondary:
                threading.Thread(target=self._settle_when_up,
                                 args=(tid, anchors, 10.0, side.secondary, standing),
                                 name=f"settle-{self.name}", daemon=True).start()
        else:
            def initiate(session: vici.Session, child: str) -> None:
                msg = {"child": child, "ike": tid, "timeout": int(timeout * 1000),
                       "init-limits": "no"}
                for event in session.initiate(msg):
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("%s: %s", self.name, log_text(_s(event.get("msg"))))

            try:
                if keep_sa and not ahead:   # a move back not promoted on its live
                    # CHILD_SA (kernel XFRM, promote_tunnel): that one goes first
                    self._call(self._terminate_children, tid)
                try:
                    for child in conn[tid]["children"]:
                        self._call(initiate, child)
                except CommandException:
                    if not ahead:
                        raise
                    # the prepared IKE_SA is gone (or charon lost the config): load
                    # everything and start afresh, once
                    log.info("%s: tunnel %s: its prepared IKE_SA did not serve, "
                             "loading it again", self.name, log_text(tid))
                    self._call(load_all)
                    self._loaded[tid] = (conn, side.psk)
                    later = False
                    for child in conn[tid]["children"]:
                        self._call(initiate, child)
            except CommandException as exc:
                raise TunnelError(f"{self.name}: initiating tunnel {tid} to "
                                  f"{side.remote.address} failed: {exc}") from exc
            finally:
                if self._anchors is not None and anchors:
                    self._anchors.settle(anchors)
            if later:   # the new key, for any later IKE_SA of this tunnel
                try:
                    self._call(lambda s: s.load_shared(secret))
                    self._loaded[tid] = (conn, side.psk)
                except CommandException as exc:
                    raise TunnelError(f"{self.name}: loading the key of tunnel {tid} "
                                      f"failed: {exc}") from exc
            if side.secondary:
                self._reassert_primaries(tid)
        took = time.monotonic() - t0
        log.info("%s: tunnel %s %s in %.1f ms%s", self.name, log_text(tid),
                 "up" if side.initiator else "loaded", took * 1e3,
                 " (connection loaded ahead)" if ahead else "")
        return took

    def prepare_tunnel(self, side: TunnelSide, timeout: float = 5.0,
                       child: bool = False) -> float:
        """Load a tunnel's connection and secret and, when ``side.initiator``, establish
        its IKE_SA only (VICI ``initiate`` with ``ike`` and no ``child``: charon's
        childless initiation, RFC 6023).  No CHILD_SA, so no policy or selector anchor:
        nothing steers traffic.  A later ``add_tunnel(side, keep_sa=True)`` (both ends)
        then brings the CHILD_SA up on the standing IKE_SA with one CREATE_CHILD_SA
        exchange (issue 14).  ``child`` (libipsec): the CHILD_SA too, secondary at the
        responder (the HA), promoted at the move (``promote_tunnel``).  Seconds taken."""
        t0 = time.monotonic()
        tid = side.tunnel_id
        if child and self.uses_libipsec():
            try:
                return self.add_tunnel(dataclasses.replace(side, secondary=not side.initiator),
                                       timeout, standing=True)
            except TunnelError:
                self._standing.discard(tid)
                raise
        conn = connection_for(side)
        secret = secret_for(side)

        def load(session: vici.Session) -> None:
            session.load_shared(secret)
            session.load_conn(conn)

        def initiate(session: vici.Session) -> None:
            msg = {"ike": tid, "timeout": int(timeout * 1000), "init-limits": "no"}
            for _event in session.initiate(msg):
                pass

        try:
            self._call(load)
            self._loaded[tid] = (conn, side.psk)
            if side.initiator:
                self._call(initiate)
        except CommandException as exc:
            self._loaded.pop(tid, None)
            raise TunnelError(f"{self.name}: preparing tunnel {tid} failed: {exc}") from exc
        self._childless.add(tid)
        took = time.monotonic() - t0
        log.info("%s: tunnel %s prepared (%s) in %.1f ms", self.name, log_text(tid),
                 "IKE_SA up" if side.initiator else "loaded", took * 1e3)
        return took

    def add_prepared(self, side: TunnelSide, timeout: float = 5.0) -> float:
        """``add_tunnel`` keeping the prepared IKE_SA: the CHILD_SA comes up on it."""
        return self.add_tunnel(side, timeout, keep_sa=True)

    def promote_tunnel(self, side: TunnelSide, timeout: float = 2.0,
                       rekey: bool = False, wait: bool = True, key: bool = True) -> float:
        """The move onto a CHILD_SA stood up ahead: the move's key loaded (``key=False``:
        by ``load_key`` after the move; no CREATE_CHILD_SA needs it); ``rekey`` (at
        the HA: a rekey's responder installs its outbound SA only at the old one's DELETE)
        rekeyed here: the newest SA of the reqid, the downlink.  ``wait=False``: the
        rekey is only issued (its CREATE_CHILD_SA round crosses the core: 20-60 ms
        at a move, issue 14 h14g); ``rekeyed`` tells when it completed.  Seconds
        taken."""
        t0, tid = time.monotonic(), side.tunnel_id
        if rekey and tid in self._relive:
            self._relive.discard(tid)
            self._standing.add(tid)     # rekeyed below, as a standing one
        elif tid not in self._standing and not rekey and self._lives_as(side):
            # a move back within the old FA's retire: the CHILD_SA the MN left is still
            # installed as the move wants it; only the key (issue 14)
            if key:
                self.load_key(side)
            if not side.initiator:
                self._relive.add(tid)
            log.info("%s: tunnel %s promoted on its live CHILD_SA", self.name,
                     log_text(tid))
            return time.monotonic() - t0
        if tid not in self._standing:   # (kernel XFRM, or a plain prepared IKE_SA)
            return 0.0 if rekey else self.add_prepared(side, timeout=max(timeout, 5.0))
        if not rekey and not self._stands_as(side):
            log.info("%s: tunnel %s: its standing CHILD_SA is gone or the tunnel changed: "
                     "set up anew", self.name, log_text(tid))
            return self.add_tunnel(side, timeout=max(timeout, 5.0))
        if rekey or side.initiator:     # (the HA's own move call keeps it standing)
            self._standing.discard(tid)
        try:
            if not rekey and key:
                self.load_key(side)
            elif rekey:
                st = self.tunnel(tid)
                old = {c.unique_id for c in (st.children if st else ())
                       if c.state == "INSTALLED"}
                if not old:
                    raise TunnelError(f"{self.name}: {tid}: no CHILD_SA to promote")
                self._promoted[tid] = time.monotonic()   # re-assertions stop (primaries.py)
                self._rekeying[tid] = old
                for cid in old:
                    self._call(lambda s, cid=cid: s.rekey({"child-id": cid}))
                while wait and self.rekeyed(tid) is False:
                    if time.monotonic() - t0 > timeout:
                        raise TunnelError(f"{self.name}: {tid}: not promoted in {timeout} s")
                    time.sleep(0.002)
        except CommandException as exc:
            self._rekeying.pop(tid, None)
            raise TunnelError(f"{self.name}: promoting tunnel {tid} failed: {exc}") from exc
        took = time.monotonic() - t0
        log.info("%s: tunnel %s promoted in %.1f ms", self.name, log_text(tid), took * 1e3)
        return took

    def load_key(self, side: TunnelSide) -> float:
        """``side``'s PSK loaded, unless this driver loaded it already, or the tunnel
        is no longer loaded here (removed since: its secret went with it; issue 14)."""
        t0, loaded = time.monotonic(), self._loaded.get(side.tunnel_id)
        if loaded is not None and loaded[1] != side.psk:
            self._call(lambda s: s.load_shared(secret_for(side)))
            self._loaded[side.tunnel_id] = (loaded[0], side.psk)
        return time.monotonic() - t0

    def rekeyed(self, tunnel_id: str) -> bool | None:
        """The promotion's rekey of ``tunnel_id`` (``promote_tunnel(rekey=True)``) has
        its new CHILD_SA installed; None: no rekey of it is pending (none was issued:
        nothing stood there, or it was already reported done or removed)."""
        old = self._rekeying.get(tunnel_id)
        if old is None:
            return None

        try:
            states = self._states_of(tunnel_id)
        except CommandException as exc:
            raise TunnelError(f"{self.name}: {tunnel_id}: {exc}") from exc
        if not any(c.state == "INSTALLED" and c.unique_id not in old
                   for st in states for c in st.children):
            return False
        self._rekeying.pop(tunnel_id, None)
        return True

    def _lives_as(self, side: TunnelSide) -> bool:
        """The tunnel was added (not stood up ahead) as ``side`` wants it, the key aside
        (at the responder its end may have been loaded as the standing secondary it was
        promoted from), and its CHILD_SA is installed here."""
        loaded = self._loaded.get(side.tunnel_id)
        if loaded is None or side.tunnel_id in self._childless or not self.uses_libipsec():
            return False
        wants = [connection_for(side)]
        if not side.initiator:
            wants.append(connection_for(dataclasses.replace(side, secondary=True)))
        if loaded[0] not in wants:
            return False
        return self._child_installed(side.tunnel_id)

    def stand_live(self, side: TunnelSide) -> float | None:
        """Keep the tunnel's live CHILD_SA as the standing one of a preparation of it
        (issue 14: the tunnel a seamless MN left; ``GatewayDriverBase.stand_live``):
        under kernel-libipsec only (standing CHILD_SAs are that backend's), where
        ``_lives_as(side)``.  The preparation's key is loaded.  Seconds until charon's
        rekey of it (VICI ``rekey-time``; inf: none scheduled), or None."""
        tid = side.tunnel_id
        try:
            if not self.uses_libipsec() or not self._lives_as(side):
                return None
            self._standing.add(tid)
            self.load_key(side)
            rekeys = [c.rekey_in for st in self._states_of(tid) for c in st.children
                      if c.state == "INSTALLED" and c.rekey_in is not None]
        except CommandException as exc:
            self._standing.discard(tid)
            raise TunnelError(f"{self.name}: keeping {tid} standing: {exc}") from exc
        self._relive.discard(tid)
        log.info("%s: tunnel %s kept standing on its live CHILD_SA", self.name,
                 log_text(tid))
        return float(min(rekeys)) if rekeys else math.inf

    def _child_installed(self, tunnel_id: str) -> bool:
        """The tunnel has an INSTALLED CHILD_SA here (``_states_of``)."""
        return any(c.state == "INSTALLED" for st in self._states_of(tunnel_id)
                   for c in st.children)

    def _states_of(self, tunnel_id: str) -> list[TunnelState]:
        """The tunnel's IKE_SAs (``list-sas`` by name).  charon checks every IKE_SA
        out before it filters by name: a blocking listing waits for any exchange or
        termination another of its threads holds (at a move back, the old forwarding
        tunnel's removal).  So first ``noblock`` (issue 14), which skips those; when
        that finds none of this tunnel's (it may be the one in use), once more,
        waiting."""
        def listed(session: vici.Session, noblock: bool) -> list[TunnelState]:
            msg = {"ike": tunnel_id, "noblock": "yes"} if noblock else {"ike": tunnel_id}
            return [_tunnel_state(_s(name), ike)
                    for sa in session.list_sas(msg) for name, ike in sa.items()]
        states: list[TunnelState] = self._call(listed, True)
        return states or self._call(listed, False)

    def _stands_as(self, side: TunnelSide) -> bool:
        """The standing CHILD_SA is what the move wants: its connection as loaded when
        stood up (only the key may differ) and, at the initiator, still installed."""
        loaded = self._loaded.get(side.tunnel_id)
        want = [connection_for(dataclasses.replace(side, secondary=not side.initiator))]
        if not side.initiator:     # (or as it lived: kept standing by ``stand_live``)
            want.append(connection_for(dataclasses.replace(side, secondary=False)))
        if loaded is None or loaded[0] not in want:
            return False
        if not side.initiator:
            return True
        return self._child_installed(side.tunnel_id)

    def load_tunnel(self, side: TunnelSide) -> float:
        """Load a tunnel's connection and secret without initiating it and without
        touching an SA charon may already hold for it (reconcile, issue 5): always
        loaded, whatever this driver loaded before (charon may have restarted)."""
        self._childless.discard(side.tunnel_id)
        return self.add_tunnel(dataclasses.replace(side, initiator=False), keep_sa=True)

    def adopt(self, side: TunnelSide) -> None:
        """A tunnel charon already holds (loaded by an earlier controller process):
        take over its selector anchors, so removing it later releases them."""
        with self._anchor_lock:
            if side.tunnel_id in self._anchored:
                return
            ctl = self._anchor_ctl()
            anchors = ctl.acquire(side.local.selectors) if ctl else []
            self._anchored[side.tunnel_id] = anchors
            if ctl is not None and anchors:
                ctl.settle(anchors)

    def wait_closed(self, stop: threading.Event, poll: float = 0.5) -> bool:
        """Block while charon lives: hold a second VICI connection open and return
        True as soon as charon closes it (the process died: the kernel closes its
        sockets), False when ``stop`` is set.  Raises ``TunnelError`` when charon
        cannot be reached at all.  Nothing is sent on this connection."""
        sock = self._vici_socket()
        sock.settimeout(poll)
        try:
            while not stop.is_set():
                try:
                    if sock.recv(1) == b"":
                        return True
                except socket.timeout:
                    continue
                except OSError:
                    return True
            return False
        finally:
            sock.close()

    def loaded_connections(self) -> dict[str, dict[str, list[str]]]:
        """Loaded connections (``list-conns``): name -> remote_addrs, local_ts,
        remote_ts (of its child of the same name)."""

        def list_conns(session: vici.Session) -> dict[str, dict[str, list[str]]]:
            out: dict[str, dict[str, list[str]]] = {}
            for conn in session.list_conns():
                for raw_name, c in conn.items():
                    name = _s(raw_name)
                    children = c.get("children") or {}
                    child = next((v for k, v in children.items() if _s(k) == name),
                                 next(iter(children.values()), {}))
                    out[name] = {"remote_addrs": list(_strs(c.get("remote_addrs"))),
                                 "local_ts": list(_strs(child.get("local-ts"))),
                                 "remote_ts": list(_strs(child.get("remote-ts")))}
            return out

        result: dict[str, dict[str, list[str]]] = self._call(list_conns)
        return result

    def _settle_when_up(self, tunnel_id: str, anchors: list[str], timeout: float,
                        secondary: bool = False, standing: bool = False) -> None:
        """Responder side: settle host anchors (and, for a secondary tunnel, re-assert
        the primaries) once the peer has brought the SA up; a standing one only while it
        still stands (promoted meanwhile, it carries the MN's downlink: leave it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = self.tunnel(tunnel_id)
            except TunnelError:
                break
            if state is not None and state.established:
                break
            if self._anchored.get(tunnel_id) is not anchors:
                return              # replaced or removed meanwhile
            time.sleep(0.002)
        if self._anchors is not None and self._anchored.get(tunnel_id) is anchors:
            self._anchors.settle(anchors)
        if secondary and self._anchored.get(tunnel_id) is anchors and (
                not standing or tunnel_id in self._standing):
            self._reassert_primaries(tunnel_id)

    def uses_libipsec(self) -> bool:
        """Whether this charon runs ``kernel-libipsec`` (VICI ``stats``, cached); when
        it cannot tell, True (the caller then does what libipsec needs)."""
        if self._libipsec is None:
            try:
                stats = self._call(lambda s: s.stats())
            except (CommandException, TunnelError):
                return True
            plugins = {_s(p) for p in stats.get("plugins") or []}
            self._libipsec = "kernel-libipsec" in plugins if plugins else True
        return self._libipsec

    def remove_aside(self, tunnel_id: str) -> None:
        """``remove_tunnel`` over the second VICI session: it runs while the main one
        is busy (issue 14: the MN's promotion here)."""
        self.remove_tunnel(tunnel_id, aside=True)

    def remove_tunnel(self, tunnel_id: str, aside: bool = False) -> None:
        """Terminate the tunnel's IKE_SA (forced, immediate), unload conn and secret."""

        counts = [0, 0]

        def remove(session: vici.Session) -> None:
            for sa in session.list_sas({"ike": tunnel_id}):   # what it carried, for the log
                for name, ike in sa.items():
                    state = _tunnel_state(_s(name), ike)
                    counts[0] += state.packets_in
                    counts[1] += state.packets_out
            self._terminate(session, tunnel_id)
            for command, arg in ((session.unload_conn, {"name": tunnel_id}),
                                 (session.unload_shared, {"id": _secret_id(tunnel_id)})):
                try:
                    command(arg)
                except CommandException:
                    pass            # already gone: removal is idempotent

        self._loaded.pop(tunnel_id, None)
        self._childless.discard(tunnel_id)
        self._standing.discard(tunnel_id)
        self._relive.discard(tunnel_id)
        self._promoted.pop(tunnel_id, None)
        self._rekeying.pop(tunnel_id, None)
        self._call(remove, aside=aside)
        with self._anchor_lock:
            anchors = self._anchored.pop(tunnel_id, [])
            if self._anchors is not None:
                self._anchors.release(anchors)
        log.info("%s: tunnel %s removed (ESP packets in %d, out %d)", self.name,
                 log_text(tunnel_id), *counts)

    _has_sa = staticmethod(teardown.has_sa)
    _terminate_children = staticmethod(teardown.terminate_children)
    _terminate = staticmethod(teardown.terminate_ike)

    def tunnels(self) -> list[TunnelState]:
        """Every IKE_SA charon holds, typed."""

        def list_sas(session: vici.Session) -> list[TunnelState]:
            out = []
            for sa in session.list_sas():
                for name, ike in sa.items():
                    out.append(_tunnel_state(_s(name), ike))
            return out

        result: list[TunnelState] = self._call(list_sas)
        return result

    def tunnel(self, tunnel_id: str) -> TunnelState | None:
        """One tunnel's IKE_SA (the first charon lists), or None."""
        states = self._states_of(tunnel_id)
        return states[0] if states else None

    def connections(self) -> list[str]:
        """Names (tunnel ids) of the loaded connections."""

        def list_conns(session: vici.Session) -> list[str]:
            return [_s(name) for conn in session.list_conns() for name in conn]

        result: list[str] = self._call(list_conns)
        return result
