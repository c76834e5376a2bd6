"""The `mipvpn` command.

Running things: ``controller``, ``demo``, ``scenario``, ``experiment``, ``check-config``.
Asking a running controller (through its REST API, ``--url``): ``status``, ``bindings``,
``tunnels``, ``profiles show|set|update``, ``allowance show|set``; readable tables, or
``--json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from controller import compiled
from controller.textutil import table

DEFAULT_TOPOLOGY = str(Path(__file__).resolve().parent.parent / "topology" / "default.yaml")


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return (host or "127.0.0.1", int(port))


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """A failure explained to the user: ``str(exc)`` says what to do next."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- REST client


class RestClient:
    """The controller's REST API, with errors turned into next steps."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token or None
        self.timeout = timeout

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(method, path, exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"controller not reachable at {self.url} ({reason}): start it "
                           "with `mipvpn controller` or `./run demo`, or point --url "
                           "(or MIPVPN_URL) at it", 3) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(f"{method} {self.url}{path} did not answer JSON: is {self.url} "
                           "a mipvpn controller?") from None

    def _http_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> CliError:
        detail = ""
        try:
            body = json.loads(exc.read() or b"{}")
            detail = body.get("detail", "") if isinstance(body, dict) else ""
        except ValueError:
            pass
        fields = isinstance(detail, list)
        if isinstance(detail, list):  # validation errors: [{"field": ..., "message": ...}]
            detail = "; ".join(f"{d.get('field', '?')}: {d.get('message', d.get('msg', ''))}"
                               if isinstance(d, dict) else str(d) for d in detail)
        detail = detail if isinstance(detail, str) else json.dumps(detail)
        where = f"{method} {path}"
        if exc.code == 403 and fields:
            return CliError(f"{where}: not allowed: {detail}; the operator decides what a "
                            "user may change (`mipvpn allowance show NAI`)", 7)
        if exc.code in (401, 403):
            hint = ("the token was refused: check it (the operator token is in the "
                    "controller's RUN_DIR/operator.token)" if self.token else
                    "this needs a token: pass --token-file FILE or set MIPVPN_TOKEN (the "
                    "operator token is in the controller's RUN_DIR/operator.token; "
                    "--run-dir DIR reads it from there)")
            return CliError(f"{where}: HTTP {exc.code} {detail or exc.reason}; {hint}", 4)
        if exc.code == 404:
            return CliError(f"{where}: {detail or 'not found'}", 5)
        if exc.code == 405:
            return CliError(f"{where}: this controller does not support it (HTTP 405): "
                            "is it an older mipvpn?", 5)
        if exc.code == 422:
            return CliError(f"{where}: the controller rejected the request: {detail}", 6)
        return CliError(f"{where}: HTTP {exc.code} {detail or exc.reason}; see the "
                        "controller's log", 1)


# ---------------------------------------------------------------- output


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def cmd_status(client: RestClient, args: argparse.Namespace) -> int:
    topo = client.get("/v1/topology")
    bindings = client.get("/v1/bindings")
    tunnels = client.get("/v1/tunnels")
    reported = tunnels.get("gateways", {})
    switches = topo.get("switches", [])
    connected = [s for s in switches if s.get("connected")]
    gateways = []
    for gw in topo.get("gateways", []):
        states = reported.get(gw["name"])
        if isinstance(states, list):
            up = sum(1 for t in states if t.get("established"))
            charon = f"answering ({up}/{len(states)} tunnels established)"
        elif states is None:
            charon = "not managed by this controller"
        else:
            charon = "not answering"
        gateways.append({**gw, "charon": charon})
    data = {"controller": {"url": client.url, "up": True, "topology": topo.get("name")},
            "switches": switches, "gateways": gateways, "bindings": len(bindings)}
    lines = [f"controller  up at {client.url} (topology {topo.get('name')!r})",
             f"switches    {len(connected)}/{len(switches)} connected"]
    missing = [s["name"] for s in switches if not s.get("connected")]
    if missing:
        lines.append(f"            not connected: {', '.join(missing)} (is Mininet up and "
                     "pointed at this controller's OpenFlow port?)")
    lines.append(f"bindings    {len(bindings)}")
    lines.append("")
    lines.append(table(["GATEWAY", "KIND", "DOMAIN", "CORE", "CHARON"],
                       [[g["name"], g.get("kind"), g.get("domain"), g.get("core"),
                         g["charon"]] for g in gateways]))
    _out(args, data, "\n".join(lines))
    return 0


def cmd_bindings(client: RestClient, args: argparse.Namespace) -> int:
    bindings = client.get("/v1/bindings")
    rows = [[b.get("nai"), b.get("home_address"), b.get("care_of_address"),
             b.get("foreign_agent"), b.get("lifetime"), b.get("expires_in"),
             " ".join(b.get("tunnels", []))] for b in bindings]
    text = (table(["NAI", "HOME ADDRESS", "CARE-OF", "FA", "LIFETIME", "EXPIRES IN",
                   "TUNNELS"], rows) if rows else "no bindings (no mobile node registered)")
    _out(args, bindings, text)
    return 0


def cmd_tunnels(client: RestClient, args: argparse.Namespace) -> int:
    data = client.get("/v1/tunnels")
    intended = [[t.get("gateway"), t.get("tunnel_id"), t.get("remote_gateway"),
                 t.get("remote"), t.get("state"), t.get("setup_ms", ""), t.get("error", "")]
                for t in data.get("intended", [])]
    lines = ["set by the controller:"]
    lines.append(table(["GATEWAY", "TUNNEL", "PEER", "PEER ADDRESS", "STATE", "SETUP MS",
                        "ERROR"], intended) if intended else "  none")
    reported = []
    down = []
    for gw, states in sorted(data.get("gateways", {}).items()):
        if not isinstance(states, list):
            down.append(f"{gw} ({states.get('error', 'not answering')})"
                        if isinstance(states, dict) else gw)
            continue
        for t in states:
            reported.append([gw, t.get("tunnel_id"), t.get("state"),
                             "yes" if t.get("established") else "no",
                             t.get("packets_in"), t.get("packets_out"),
                             t.get("bytes_in"), t.get("bytes_out")])
    lines += ["", "reported by charon:"]
    lines.append(table(["GATEWAY", "TUNNEL", "IKE STATE", "ESTABLISHED", "PKTS IN",
                        "PKTS OUT", "BYTES IN", "BYTES OUT"], reported)
                 if reported else "  none")
    if down:
        lines.append("charon not answering at: " + "; ".join(down))
    _out(args, data, "\n".join(lines))
    return 0


def _profile_text(prof: dict[str, Any]) -> str:
    dests = [[d.get("prefix"), d.get("gateway")] for d in prof.get("destinations", [])]
    sec = prof.get("security", {})
    qos = prof.get("qos", {})
    rate = qos.get("rate_kbps", 0)
    return "\n".join([
        f"NAI        {prof.get('nai')}",
        f"security   IKE {sec.get('ike')}, ESP {sec.get('esp')}",
        f"QoS        rate {'unlimited' if not rate else f'{rate} kbit/s'}, "
        f"DSCP {qos.get('dscp', 0)}",
        *(["handoff    smooth (old FA forwards in-flight traffic)"]
          if prof.get("smooth_handoff") else []),
        *([f"VPN info   sent to the CN gateway "
           f"{'on demand' if prof['distribution'] == 'on_demand' else 'at registration'}"]
          if prof.get("distribution") else []),
        "destinations:",
        table(["PREFIX", "GATEWAY"], dests) if dests else "  none"])


def _profile_path(nai: str) -> str:
    return "/v1/profiles/" + urllib.parse.quote(nai, safe="@")


def cmd_profiles(client: RestClient, args: argparse.Namespace) -> int:
    """``show``; ``set`` replaces the whole profile (PUT: every section in the file);
    ``update`` changes only what the file has (PATCH)."""
    if args.action == "show":
        prof = client.get(_profile_path(args.nai))
        _out(args, prof, _profile_text(prof))
        return 0
    body = _read_profile_file(args.file)
    named = body.pop("nai", args.nai)  # `profiles show --json` output is accepted as is
    if named != args.nai:
        raise CliError(f"{args.file} is the profile of {named!r}, not of {args.nai!r}")
    method = "PUT" if args.action == "set" else "PATCH"
    prof = client.request(method, _profile_path(args.nai), body)
    shown = prof if isinstance(prof, dict) and "nai" in prof else client.get(
        _profile_path(args.nai))
    _out(args, shown, f"profile of {args.nai} updated\n{_profile_text(shown)}")
    return 0


def _allowance_text(a: dict[str, Any]) -> str:
    rate = a.get("max_rate_kbps")

    def listed(key: str) -> str:
        return ", ".join(str(v) for v in a.get(key) or []) or "none"
    return "\n".join([
        f"prefixes      {listed('prefixes')}",
        f"gateways      {listed('gateways')}",
        "rate          " + ("only the current one" if rate is None else
                           "any (unlimited included)" if rate == 0 else
                           f"at most {rate} kbit/s"),
        f"DSCP          {listed('dscp')}",
        f"IKE           {listed('ike')}",
        f"ESP           {listed('esp')}",
        "may toggle    " + (", ".join(k for k in ("smooth_handoff", "distribution")
                                      if a.get(k)) or "nothing")])


def cmd_allowance(client: RestClient, args: argparse.Namespace) -> int:
    """What a user may change in their own profile (operator token)."""
    path = "/v1/users/" + urllib.parse.quote(args.nai, safe="@") + "/allowance"
    if args.action == "show":
        got = client.get(path)
    else:
        got = client.request("PUT", path, _read_profile_file(args.file, "an allowance"))
    _out(args, got, f"allowance of {args.nai}\n{_allowance_text(got)}")
    return 0


def _read_profile_file(path: str, what: str = "a profile") -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path}: not valid JSON ({exc}); see `mipvpn profiles show NAI "
                       "--json` for the layout") from None
    if not isinstance(body, dict):
        raise CliError(f"{path}: {what} is a JSON object; see `mipvpn profiles show NAI "
                       "--json` (or `allowance show NAI --json`) for the layout")
    return body


def resolve_token(args: argparse.Namespace) -> str | None:
    """--token-file, else $MIPVPN_TOKEN, else $MIPVPN_OPERATOR_TOKEN (what the controller
    itself reads), else RUN_DIR/operator.token when this user may read it.  A token on
    the command line (``--token``) is refused: every user can read it (``ps``)."""
    if getattr(args, "token", None) is not None:
        raise CliError("--token is refused: a token on the command line is visible to "
                       "every user (ps); use --token-file FILE or set MIPVPN_TOKEN", 2)
    from_file = None
    if getattr(args, "token_file", None):
        try:
            from_file = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--token-file {args.token_file}: cannot read it "
                           f"({getattr(exc, 'strerror', None) or type(exc).__name__})",
                           2) from None
        if not from_file:
            raise CliError(f"--token-file {args.token_file}: the file is empty", 2)
    for value in (from_file, os.environ.get("MIPVPN_TOKEN"),
                  os.environ.get("MIPVPN_OPERATOR_TOKEN")):
        if value:
            return str(value).strip()
    try:
        return (Path(args.run_dir) / "operator.token").read_text().strip() or None
    except OSError:
        return None


REST_COMMANDS = {"status": cmd_status, "bindings": cmd_bindings, "tunnels": cmd_tunnels,
                 "profiles": cmd_profiles, "allowance": cmd_allowance}


def _add_openflow_options(cmd: Any) -> None:
    """The OpenFlow listener (``controller``; ``check-config`` warns about it)."""
    cmd.add_argument("--of-listen", default="127.0.0.1:6653", type=_hostport,
                     help="OpenFlow listen address (default 127.0.0.1:6653)")
    cmd.add_argument("--of-tls-cert", default=None,
                     help="OpenFlow over TLS: the controller's certificate (PEM)")
    cmd.add_argument("--of-tls-key", default=None,
                     help="OpenFlow over TLS: the controller's private key (PEM)")
    cmd.add_argument("--of-tls-ca", default=None,
                     help="OpenFlow over TLS: require switch certificates this CA signed")


def _of_tls(parser: Any, args: Any) -> Any:
    from controller.config.openflow import openflow_tls
    try:
        return openflow_tls(args.of_tls_cert, args.of_tls_key, args.of_tls_ca)
    except ValueError as exc:
        parser.error(str(exc))


def _add_rest_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("MIPVPN_URL", DEFAULT_URL),
                        help="the controller's REST API (env MIPVPN_URL; default "
                             f"{DEFAULT_URL})")
    common.add_argument("--token-file", default=None, metavar="FILE",
                        help="file holding the API token, sent as 'Authorization: Bearer' "
                             "(or env MIPVPN_TOKEN; default: the operator token in "
                             "RUN_DIR/operator.token)")
    common.add_argument("--token", default=None, help=argparse.SUPPRESS)  # refused: ps
    common.add_argument("--run-dir", default=os.environ.get("MIPVPN_RUN_DIR", "/run/mipvpn"),
                        help="the controller's run directory, for its operator.token "
                             "(env MIPVPN_RUN_DIR)")
    common.add_argument("--json", action="store_true", help="print the API's JSON")
    sub.add_parser("status", parents=[common],
                   help="controller up? switches, gateways and their charons, bindings")
    sub.add_parser("bindings", parents=[common], help="the home agent's binding cache")
    sub.add_parser("tunnels", parents=[common],
                   help="tunnels the controller set, and what each charon reports")
    prof = sub.add_parser("profiles", help="a user's VPN profile")
    psub = prof.add_subparsers(dest="action", required=True)
    show = psub.add_parser("show", parents=[common], help="print a user's VPN profile")
    show.add_argument("nai", help="the user's NAI, e.g. alice@home.example")
    put = psub.add_parser("set", parents=[common],
                          help="replace a user's whole VPN profile (needs a token; the "
                               "file has every section)")
    put.add_argument("nai")
    put.add_argument("--file", required=True,
                     help="the profile as JSON ('-' for stdin); layout as "
                          "`mipvpn profiles show NAI --json` prints")
    patch = psub.add_parser("update", parents=[common],
                            help="change only the fields the file has, e.g. "
                                 '{"qos": {"dscp": 46}} (needs a token)')
    patch.add_argument("nai")
    patch.add_argument("--file", required=True, help="the changes as JSON ('-' for stdin)")
    allow = sub.add_parser("allowance",
                           help="what a user may change in their own profile (operator)")
    asub = allow.add_subparsers(dest="action", required=True)
    ashow = asub.add_parser("show", parents=[common], help="print a user's allowance")
    ashow.add_argument("nai")
    aset = asub.add_parser("set", parents=[common], help="replace a user's allowance")
    aset.add_argument("nai")
    aset.add_argument("--file", required=True,
                      help="the allowance as JSON ('-' for stdin); layout as "
                           "`mipvpn allowance show NAI --json` prints")


def version_text() -> str:
    """`mipvpn --version`: the package's version and which build of the hot modules runs."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("mipvpn")
    except PackageNotFoundError:
        v = "unknown"
    return f"mipvpn {v}, {compiled.STATUS.describe()}"


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mipvpn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="print the version and which build runs (compiled or pure)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    ctl = sub.add_parser("controller", help="run the controller alone (bring your own Mininet)")
    ctl.add_argument("--config", default=DEFAULT_TOPOLOGY, help="topology/config YAML")
    ctl.add_argument("--run-dir", default="/run/mipvpn",
                     help="gateways' VICI sockets live in RUN_DIR/gw/<name>/charon.vici")
    ctl.add_argument("--db", default=None, help="VPN database (SQLite); default RUN_DIR/vpn.db")
    ctl.add_argument("--state", default=None, metavar="PATH|etcd://HOST:PORT",
                     help="where bindings, VPN information and sessions are kept: a "
                          "SQLite file (default: the VPN database) or etcd, shared by "
                          "the home domain's replicas (docs/deployment.md)")
    _add_openflow_options(ctl)
    ctl.add_argument("--rest", default="127.0.0.1:8080", help="REST listen address or 'off'")
    ctl.add_argument("--roles", default=None,
                     help="comma-separated role keys this process runs (default: all), e.g. "
                          "'aaaf:domain-b' for a split deployment (docs/deployment.md)")
    ctl.add_argument("--exclude-roles", default=None,
                     help="comma-separated role keys another process runs")
    ctl.add_argument("--no-openflow", action="store_true",
                     help="do not listen for switches (a process with AAA roles only)")

    demo = sub.add_parser("demo", help="topology up, MN registers, moves; numbers printed")
    demo.add_argument("--config", default=DEFAULT_TOPOLOGY)
    demo.add_argument("--json", default=None, help="write the results as JSON to this file")
    demo.add_argument("--keep-dir", action="store_true", help="keep the run directory")
    demo.add_argument("--rest", default="127.0.0.1:8080")
    demo.add_argument("--of-port", default=6653, type=int)
    demo.add_argument("--plots", default=None, metavar="DIR",
                      help="write PNGs (probe stream with the move, phases per handover)")
    demo.add_argument("--cli", action="store_true",
                      help="after the registration, Mininet's CLI with `move mn1 fa2` and "
                           "`bindings` (instead of the scripted move)")
    demo.add_argument("--link-model", choices=("carrier", "replug"), default="carrier",
                      help="how the emulation moves an MN: carrier (cells attached ahead, "
                           "a move flips carriers) or replug (del-port/add-port)")

    scn = sub.add_parser("scenario", help="run a scripted mobility scenario (YAML)")
    scn.add_argument("name", nargs="?", help="scenario name (see --list) or a YAML file")
    scn.add_argument("--list", action="store_true", help="list the scenarios")
    scn.add_argument("--json", default=None, help="write the results as JSON to this file")
    scn.add_argument("--keep-dir", action="store_true", help="keep the run directory")
    scn.add_argument("--rest", default="127.0.0.1:8080")
    scn.add_argument("--of-port", default=6653, type=int)

    exp = sub.add_parser("experiment", help="a mobility experiment at scale: generated "
                                            "topology, mobility model, report (YAML)")
    exp.add_argument("file", help="experiment YAML (docs/experiments.md)")
    exp.add_argument("--duration", type=float, default=None, help="seconds (overrides)")
    exp.add_argument("--out", default=None, help="report directory (JSON, HTML, PNGs)")
    exp.add_argument("--pcap", default=None, help="capture the control plane to this file")
    exp.add_argument("--record-trace", default=None, metavar="FILE",
                     help="write the trace (.csv or .json) before running")
    exp.add_argument("--replay-trace", default=None, metavar="FILE",
                     help="replay this trace instead of the model")
    exp.add_argument("--dry-run", action="store_true",
                     help="plan only (trace, probed MNs); nothing started")
    exp.add_argument("--keep-dir", action="store_true", help="keep the run directory")
    exp.add_argument("--rest", default="127.0.0.1:8080")
    exp.add_argument("--of-port", default=6653, type=int)

    from bench import add_parser as add_bench_parser
    add_bench_parser(sub)

    chk = sub.add_parser("check-config", help="validate a topology/config YAML offline "
                                              "(and warn about listeners in clear)")
    chk.add_argument("file")
    _add_openflow_options(chk)

    _add_rest_commands(sub)

    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.cmd not in REST_COMMANDS:
        logging.getLogger("mipvpn").info("running %s", compiled.STATUS.describe())
    if args.cmd in REST_COMMANDS:
        try:
            token = resolve_token(args)
            return REST_COMMANDS[args.cmd](RestClient(args.url, token), args)
        except CliError as exc:
            print(f"mipvpn {args.cmd}: {exc}", file=sys.stderr)
            return exc.code
    if args.cmd == "controller":
        from controller.launcher import run_controller
        rest = None if args.rest == "off" else _hostport(args.rest)
        return run_controller(args.config, args.run_dir, args.db, args.of_listen[0],
                              args.of_listen[1], rest, roles=_csv(args.roles),
                              exclude=_csv(args.exclude_roles),
                              openflow=not args.no_openflow, of_tls=_of_tls(parser, args),
                              state=args.state)
    if args.cmd == "demo":
        from mininet_scripts.demo import run_demo
        return run_demo(args)
    if args.cmd == "scenario":
        from mininet_scripts.scenario import run_scenario_cli
        return run_scenario_cli(args)
    if args.cmd == "experiment":
        from mininet_scripts.experiment import run_experiment_cli
        return run_experiment_cli(args)
    if args.cmd == "bench":
        from bench import run_bench
        return run_bench(args)
    if args.cmd == "check-config":
        from controller.config import check_config, config_warnings
        from controller.config.openflow import openflow_tls
        errors = check_config(args.file)
        try:
            of_tls = openflow_tls(args.of_tls_cert, args.of_tls_key, args.of_tls_ca)
        except ValueError as exc:
            errors.append(f"{args.file}: {exc}")
            of_tls = None
        for err in errors:
            print(err, file=sys.stderr)
        if not errors:
            # warnings do not fail the check (issue 11)
            for warning in config_warnings(args.file, args.of_listen, of_tls is not None):
                print(warning, file=sys.stderr)
            print(f"{args.file}: OK")
        return 1 if errors else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
