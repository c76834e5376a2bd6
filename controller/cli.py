"""The `mipvpn` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DEFAULT_TOPOLOGY = str(Path(__file__).resolve().parent.parent / "topology" / "default.yaml")


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return (host or "127.0.0.1", int(port))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mipvpn", description=__doc__)
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="cmd", required=True)

    ctl = sub.add_parser("controller", help="run the controller alone (bring your own Mininet)")
    ctl.add_argument("--config", default=DEFAULT_TOPOLOGY, help="topology/config YAML")
    ctl.add_argument("--run-dir", default="/run/mipvpn",
                     help="gateways' VICI sockets live in RUN_DIR/gw/<name>/charon.vici")
    ctl.add_argument("--db", default=None, help="VPN database (SQLite); default RUN_DIR/vpn.db")
    ctl.add_argument("--of-listen", default="127.0.0.1:6653", type=_hostport)
    ctl.add_argument("--rest", default="127.0.0.1:8080", help="REST listen address or 'off'")

    demo = sub.add_parser("demo", help="topology up, MN registers, moves; numbers printed")
    demo.add_argument("--config", default=DEFAULT_TOPOLOGY)
    demo.add_argument("--json", default=None, help="write the results as JSON to this file")
    demo.add_argument("--keep-dir", action="store_true", help="keep the run directory")
    demo.add_argument("--rest", default="127.0.0.1:8080")
    demo.add_argument("--of-port", default=6653, type=int)

    scn = sub.add_parser("scenario", help="run a scripted mobility scenario (YAML)")
    scn.add_argument("name", nargs="?", help="scenario name (see --list) or a YAML file")
    scn.add_argument("--list", action="store_true", help="list the scenarios")
    scn.add_argument("--json", default=None, help="write the results as JSON to this file")
    scn.add_argument("--keep-dir", action="store_true", help="keep the run directory")
    scn.add_argument("--rest", default="127.0.0.1:8080")
    scn.add_argument("--of-port", default=6653, type=int)

    chk = sub.add_parser("check-config", help="validate a topology/config YAML offline")
    chk.add_argument("file")

    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.cmd == "controller":
        from controller.launcher import run_controller
        rest = None if args.rest == "off" else _hostport(args.rest)
        return run_controller(args.config, args.run_dir, args.db, args.of_listen[0],
                              args.of_listen[1], rest)
    if args.cmd == "demo":
        from mininet_scripts.demo import run_demo
        return run_demo(args)
    if args.cmd == "scenario":
        from mininet_scripts.scenario import run_scenario_cli
        return run_scenario_cli(args)
    if args.cmd == "check-config":
        from controller.config import check_config
        errors = check_config(args.file)
        for err in errors:
            print(err, file=sys.stderr)
        if not errors:
            print(f"{args.file}: OK")
        return 1 if errors else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
