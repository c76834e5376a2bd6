"""The runtime's timeouts, periods and bounds (read at call time: tests patch them)."""

from __future__ import annotations

from pathlib import Path

from controller.core.actions import (AnswerDiameter, NotifyVisitorLeft, RelayToHomeAgent,
                                     ReplyMip, SendDiameter, SendMip, SendToMobileNode)

ADVERT_INTERVAL = 1.0
TICK_INTERVAL = 1.0
# Diameter request timeouts: the FA gives up first and takes a late answer
# (``on_late_diameter_answer``); every hop without a late path waits longer than the
# hop behind it, so it still relays the answer its client gave up on: the AAAF (to the
# AAAH) outwaits the AAAH (to the HA).  Nothing half-installed (docs/decisions.md).
REQUEST_TIMEOUT = {"fa": 5.0, "aaah": 10.0, "aaaf": 15.0}
MALFORMED_LOG_INTERVAL = 10.0   # seconds between two "malformed" warnings of one role
PREPARE_AFTER = 0.5  # s after a registration before its neighbour tunnels are prepared
PREPARE_WAIT = 5.0   # s a preparation waits for a live tunnel of the same id to go
PREPARE_POLL = 0.05  # s between two looks
#: s after which a CHILD_SA standing ahead (``PrepareTunnel(child=True)``) is stood up
#: anew: charon would rekey it at its rekey_time (1 h, from 54 min with the jitter), and
#: a rekey of a standing SA promotes it, taking the MN's downlink (docs/decisions.md)
STANDING_REFRESH = 45 * 60.0
#: s before charon's own rekey of a live CHILD_SA kept standing (``stand_live``) that
#: the runtime stands it up anew (the refresh above, for a CHILD_SA of any age)
STANDING_MARGIN = 5 * 60.0
#: s a kept CHILD_SA must have left beyond that margin, else it is stood up anew at once
STANDING_MIN = 60.0
#: s the HA's end of the tunnel an MN left may stay the newest SA of its selectors
#: before it is removed instead of kept (the new FA's promotion rekey did not complete)
OUTRANK_WAIT = 2.0
TUNNEL_TRIES = 2  # an initiator retries once (e.g. the peer re-keyed meanwhile)
HEALTH_INTERVAL = 1.0   # s between two checks of a gateway's charon (VICI version)
HEALTH_TIMEOUT = 12.0   # s a charon may take to answer `version` before it is degraded
DEGRADED_POLL = 0.2     # s between two checks while a gateway is unreachable
STATIC_STATE = "runtime:static"   # role_state rows of the stationary tunnels
#: actions that make this controller's decisions visible to others: the state that
#: led to them is written to the state store first (issue 5)
VISIBLE = (AnswerDiameter, ReplyMip, SendToMobileNode, SendMip, SendDiameter,
           RelayToHomeAgent, NotifyVisitorLeft)

#: smooth handoff (claims 22-23): bounds of the downlink held for a departed MN
HOLD_MAX_FRAMES = 2000   # per MN; beyond, the oldest frame is dropped
HOLD_MAX_AGE = 2.0       # s; an older frame is dropped instead of forwarded
HOLD_TUNNEL_WAIT = 3.0   # s the old FA's forwarding tunnel may take to come up
HOLD_POLL = 0.005        # s between two looks at that tunnel's state
HOLD_PEER_GRACE = 0.05   # s given a peer gateway this controller cannot ask
#: issue 14: s the uplink stays held after the new FA's tunnel is up.  0: released at
#: once (the 20-32 ms once measured were not the SA's: the held frames were dropped
#: then; 40 ms vs 0 gave the same loss ratio, docs/decisions.md 2026-12-05 "a
#: standing CHILD_SA at the neighbour FA")
HOLD_UPLINK_GRACE = 0.0


def vici_socket(run_dir: str | Path, gateway: str) -> Path:
    """Where gateway ``gateway``'s charon listens for VICI (shared filesystem)."""
    return Path(run_dir) / "gw" / gateway / "charon.vici"
