"""Taking a tunnel's SAs down over VICI: the IKE_SA (forced) and its CHILD_SAs alone.

Functions of a VICI session and a tunnel id; ``StrongSwanGateway`` calls them inside its
session lock (``driver.py``).
"""

from __future__ import annotations

import logging

import vici
from vici.exception import CommandException

from controller.adapters.strongswan.state import _s
from controller.logtext import log_text

log = logging.getLogger("mipvpn.strongswan")


def has_sa(session: vici.Session, tunnel_id: str) -> bool:
    """Whether the tunnel has an IKE_SA (in any state)."""
    return any(True for _ in session.list_sas({"ike": tunnel_id}))


def terminate_ike(session: vici.Session, tunnel_id: str) -> None:
    """Terminate the tunnel's IKE_SA, forced (no DELETE awaited); none is not an error."""
    try:
        for _ in session.terminate({"ike": tunnel_id, "force": "yes", "timeout": -1}):
            pass
    except CommandException:
        pass                    # no matching SA


def terminate_children(session: vici.Session, tunnel_id: str) -> int:
    """Delete the tunnel's CHILD_SAs, keeping its IKE_SA (an INFORMATIONAL DELETE;
    waits for the peer's answer).  charon refuses a duplicate of an installed
    CHILD_SA ("not establishing CHILD_SA ... due to existing duplicate"), so a
    tunnel re-added on its standing IKE_SA (a move back within the old FA's retire
    that ``promote_tunnel`` could not promote on its live CHILD_SA) replaces its
    CHILD_SA this way: one per tunnel, however many moves back and
    forth.  A peer that does not answer in time (dead or slow) leaves the CHILD_SA
    and the next initiate would meet that duplicate: the IKE_SA is then terminated,
    forced (no DELETE awaited), and the initiate sets up a new one.  Returns how
    many were deleted."""
    def child_ids() -> list[str]:
        return [_s(c.get("uniqueid")) for sa in session.list_sas({"ike": tunnel_id})
                for ike in sa.values() for c in (ike.get("child-sas") or {}).values()]

    ids = child_ids()
    for cid in ids:
        try:
            for _ in session.terminate({"child-id": cid, "timeout": 1000}):
                pass
        except CommandException:
            pass                # gone meanwhile, or no answer in time (below)
    if ids and set(child_ids()) & set(ids):
        log.warning("tunnel %s: CHILD_SA not deleted in 1 s (peer silent): its IKE_SA "
                    "terminated, forced", log_text(tunnel_id))
        terminate_ike(session, tunnel_id)
        if has_sa(session, tunnel_id):
            log.error("tunnel %s: its IKE_SA outlived a forced terminate",
                      log_text(tunnel_id))
    return len(ids)
