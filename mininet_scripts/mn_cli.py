"""`mipvpn demo --cli`: Mininet's interactive CLI on the demo's network, plus

    move MN FA      move a mobile node's link to FA's access switch (e.g. `move mn1 fa2`),
                    wait for its re-registration, print the handover's timings
    bindings        the home agent's binding cache (REST /v1/bindings)
    handovers       every registration/move with its signalling phases (REST)

Everything else is Mininet's CLI as usual (`mn1 ping cn1`, `net`, `dump`, ...).  The
session object does the work; the CLI only parses, so parsing is tested without a
terminal (``parse_move``, and ``MipvpnCLI(..., script=FILE)`` over a fake session).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from mininet.cli import CLI

from controller.textutil import table
from mininet_scripts.demo_io import (_last_before, _registered, read_events, rest_get, say,
                                     wait_for)

__all__ = ["MipvpnCLI", "MoveError", "MoveTarget", "parse_move", "run_interactive"]


class MoveError(ValueError):
    """A `move` line that cannot be carried out; the text says what to type instead."""


@dataclass(frozen=True)
class MoveTarget:
    mn: str
    foreign_agent: str
    switch: str


def parse_move(line: str, topo: Any, location: dict[str, tuple[str, int]]) -> MoveTarget:
    """``"mn1 fa2"`` (or ``"mn1 acc2"``, the access switch) -> where to move.

    ``location``: mobile node -> (switch, port) it is attached to now."""
    args = line.split()
    mns = sorted(topo.mobile_nodes)
    fas = {sw.foreign_agent: name for name, sw in topo.switches.items()
           if sw.role == "access" and sw.foreign_agent}
    if len(args) != 2:
        example = f"move {mns[0]} {sorted(fas)[-1]}" if mns and fas else "move mn1 fa2"
        raise MoveError(f"usage: move MN FA   (e.g. `{example}`)")
    mn, target = args
    if mn not in topo.mobile_nodes:
        raise MoveError(f"{mn!r} is not a mobile node (mobile nodes: {', '.join(mns)})")
    if target in fas:
        fa, switch = target, fas[target]
    elif target in topo.switches and topo.switches[target].foreign_agent:
        switch, fa = target, topo.switches[target].foreign_agent
    else:
        raise MoveError(f"{target!r} is not a foreign agent (foreign agents: "
                        f"{', '.join(sorted(fas))})")
    if location.get(mn, ("", 0))[0] == switch:
        raise MoveError(f"{mn} is already attached to {fa} ({switch})")
    return MoveTarget(mn, fa, switch)


class Session(Protocol):
    topo: Any

    def location(self) -> dict[str, tuple[str, int]]: ...

    def move(self, target: MoveTarget) -> str: ...

    def bindings_text(self) -> str: ...

    def handovers_text(self) -> str: ...


class MipvpnCLI(CLI):  # type: ignore[misc]
    """Mininet's CLI with `move`, `bindings` and `handovers`."""

    prompt = "mipvpn> "

    def __init__(self, mininet: Any, session: Session, stdin: TextIO = sys.stdin,
                 script: str | None = None, **kwargs: Any) -> None:
        """As Mininet's CLI: runs at once; with ``script`` it runs that file's commands
        and returns (no terminal needed)."""
        self.session = session
        self.out: TextIO = kwargs.get("stdout") or sys.stdout
        super().__init__(mininet, stdin=stdin, script=script, **kwargs)

    def _say(self, text: str) -> None:
        self.out.write(text.rstrip("\n") + "\n")
        self.out.flush()

    def do_move(self, line: str) -> None:
        """Move a mobile node to another foreign agent's access switch and wait for
        its re-registration.  Usage: move MN FA   (e.g. move mn1 fa2)"""
        try:
            target = parse_move(line.split("#")[0], self.session.topo,
                                self.session.location())
        except MoveError as exc:
            self._say(f"*** {exc}")
            return
        try:
            self._say(self.session.move(target))
        except Exception as exc:  # the CLI stays up; the user sees why
            self._say(f"*** move failed: {exc}")

    def complete_move(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        words = line[:begidx].split()
        topo = self.session.topo
        pool = (sorted(topo.mobile_nodes) if len(words) <= 1 else
                sorted(sw.foreign_agent for sw in topo.switches.values()
                       if sw.foreign_agent))
        return [w for w in pool if w.startswith(text)]

    def do_bindings(self, line: str) -> None:
        """Show the home agent's binding cache (NAI, care-of address, FA, tunnels)."""
        try:
            self._say(self.session.bindings_text())
        except Exception as exc:
            self._say(f"*** cannot read the bindings: {exc}")

    def do_handovers(self, line: str) -> None:
        """Show every registration/move with its signalling phases (ms)."""
        try:
            self._say(self.session.handovers_text())
        except Exception as exc:
            self._say(f"*** cannot read the handovers: {exc}")


# ---------------------------------------------------------------- the demo's session


class DemoSession:
    """What the CLI's extra commands do, on a running ``mininet_scripts.demo.Demo``."""

    def __init__(self, demo: Any, events: dict[str, Any]) -> None:
        self.demo = demo
        self.topo = demo.topo
        self.events = events  # mobile node -> its client's events file

    def location(self) -> dict[str, tuple[str, int]]:
        return dict(self.demo.mnet.mn_location)

    def move(self, target: MoveTarget, timeout: float = 15.0) -> str:
        topo = self.topo
        mn = target.mn
        before_sw, _ = self.demo.mnet.mn_location[mn]
        fa_from = topo.switches[before_sw].foreign_agent
        port = topo.mobile_nodes[mn].attach_port
        n_reg = sum(1 for e in read_events(self.events[mn]) if e["event"] == "registered")
        t_move = time.monotonic()
        link_s = self.demo.mnet.move_host(mn, target.switch, port)
        reg = wait_for(f"{mn}'s re-registration via {target.foreign_agent}",
                       lambda: _registered(self.events[mn], n_reg), timeout)
        total_ms = (time.monotonic() - t_move) * 1000.0
        rrq = _last_before(read_events(self.events[mn]), "rrq_sent", reg["t"])
        lines = [f"{mn} moved {before_sw} ({fa_from}) -> {target.switch} "
                 f"({target.foreign_agent}): link moved in {link_s * 1000:.1f} ms, "
                 f"re-registered {total_ms:.1f} ms after the move"
                 + (f" (RRQ -> RRP {(reg['t'] - rrq['t']) * 1000:.1f} ms)" if rrq else "")]
        recs = [h for h in self._handovers() if h.get("previous_fa")]
        if recs:
            last = recs[-1]
            lines.append(f"    {last.get('kind')}, code {last.get('code')}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in last.get("phases_ms", {}).items()) + " ms")
        return "\n".join(lines)

    def _handovers(self) -> list[dict[str, Any]]:
        return list(rest_get(self.demo.rest, "/v1/handovers"))

    def bindings_text(self) -> str:
        rows = [[b["nai"], b["home_address"], b["care_of_address"], b["foreign_agent"],
                 b.get("expires_in"), " ".join(b.get("tunnels", []))]
                for b in rest_get(self.demo.rest, "/v1/bindings")]
        if not rows:
            return "no bindings"
        return table(["NAI", "HOME ADDRESS", "CARE-OF", "FA", "EXPIRES IN", "TUNNELS"], rows)

    def handovers_text(self) -> str:
        rows = [[h.get("seq"), h.get("nai"), h.get("kind"),
                 f"{h.get('previous_fa') or '-'} -> {h.get('foreign_agent')}", h.get("code"),
                 h.get("phases_ms", {}).get("controller_total", "")]
                for h in self._handovers()]
        if not rows:
            return "no handovers yet"
        return table(["#", "NAI", "KIND", "FA", "CODE", "CONTROLLER MS"], rows)


def run_interactive(demo: Any, stdin: TextIO = sys.stdin) -> None:
    """After the demo's bring-up: register every mobile node, then Mininet's CLI with
    the extra commands until the user types `exit` (or EOF)."""
    events = {}
    for mn_name, mn in demo.topo.mobile_nodes.items():
        _client, events[mn_name] = demo.start_mn_client(mn_name)
        first = wait_for(f"{mn_name}'s first registration",
                         lambda: _registered(events[mn_name], 0), 15)
        say(f"{mn_name} ({mn.nai}) registered via {first.get('fa') or first.get('coa')}")
    token = getattr(demo, "token", None)
    if token:  # so `mipvpn status --run-dir RUN_DIR` (and `sh mipvpn ...` here) find it
        from controller.adapters.private_files import private_file
        private_file(Path(demo.run_dir) / "operator.token", token + "\n")   # 0600
        os.environ["MIPVPN_TOKEN"] = token
    os.environ["MIPVPN_URL"] = demo.rest
    say(f"REST API at {demo.rest}; from another shell: `mipvpn status --url {demo.rest} "
        f"--run-dir {demo.run_dir}`")
    say("extra commands: move MN FA (e.g. `move mn1 fa2`), bindings, handovers; "
        "`exit` ends the demo")
    MipvpnCLI(demo.mnet.net, DemoSession(demo, events), stdin=stdin)
