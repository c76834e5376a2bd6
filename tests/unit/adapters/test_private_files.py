"""Keys stay off command lines and in private files (issue 11, point 7).

- ``private_files``: files 0600, directories 0700, made in one place;
- the MN client's command line as the demo, the scenario runner and `mn --custom`
  build it names key *files* (0600 in a 0700 directory, removed at teardown) and carries
  no key material; the MN client refuses ``--key`` and reads the file or environment;
- the scenario's merged topology (it holds the MNs' keys) is 0600 in a 0700 run dir;
- charon's config directory and files are private;
- `mipvpn status` & co. refuse a token on the command line and read ``--token-file``.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.private_files import (is_private, private_dir, private_file,
                                               private_run_dir)
from controller.config import Topology, load_topology
from mininet_scripts import mn_client, mn_state

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGIES = sorted((ROOT / "topology").glob("*.yaml"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------ the helpers


def test_private_file_is_0600_even_over_a_readable_file(tmp_path: Path) -> None:
    old = tmp_path / "k"
    old.write_text("old contents, longer than the new ones\n")
    os.chmod(old, 0o644)
    private_file(old, "new\n")
    assert mode(old) == 0o600 and old.read_text() == "new\n"
    fresh = private_file(tmp_path / "fresh", b"\x00\x01")
    assert mode(fresh) == 0o600 and fresh.read_bytes() == b"\x00\x01"


def test_private_file_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(OSError):
        private_file(link, "secret")
    assert target.read_text() == "x"


def test_private_dir_makes_parents_0700_and_narrows_own_dirs(tmp_path: Path) -> None:
    d = private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == 0o700 and mode(d) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o755)
    private_dir(loose)
    assert mode(loose) == 0o700
    sticky = tmp_path / "shared"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    private_dir(sticky)                      # /tmp-like: never narrowed
    assert mode(sticky) == 0o1777 and not is_private(sticky)


def test_private_run_dir_is_0700() -> None:
    d = private_run_dir("mipvpn-test-")
    try:
        assert mode(d) == 0o700 and is_private(d)
    finally:
        d.rmdir()


# ------------------------------------------------------------------ MN client command lines


def key_material(topo: Topology) -> set[str]:
    out = set()
    for mn in topo.mobile_nodes.values():
        for key in (mn.mn_aaa_key, getattr(mn, "mn_ha_key", b"")):
            if key:
                out |= {key.hex(), key.hex().upper()}
    return out


def assert_no_key_on(cmd: list[str], topo: Topology) -> None:
    assert not {"--key", "--ha-key"} & set(cmd), cmd
    for arg in cmd:
        for key in key_material(topo):
            assert key not in arg, f"key material in argv: {arg!r}"


def assert_key_files(cmd: list[str], mn: Any) -> list[Path]:
    """The files the command names hold the MN's keys, 0600 in a 0700 directory."""
    files = []
    for opt, key in (("--key-file", mn.mn_aaa_key), ("--ha-key-file", mn.mn_ha_key)):
        if not key:
            assert opt not in cmd
            continue
        path = Path(cmd[cmd.index(opt) + 1])
        assert bytes.fromhex(path.read_text().strip()) == key
        assert mode(path) == 0o600 and mode(path.parent) == 0o700
        files.append(path)
    return files


class FakeIntf:
    name = "mn1-eth0"


class FakeHost:
    """The part of a Mininet host the demo uses: records what it starts."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []

    def defaultIntf(self) -> FakeIntf:  # noqa: N802 - Mininet's name
        return FakeIntf()

    def popen(self, cmd: list[str], **_kw: Any) -> subprocess.Popen[bytes]:
        self.started.append(list(cmd))
        return subprocess.Popen(["true"])

    def cmd(self, *_a: Any, **_kw: Any) -> str:
        return ""


class FakeNet:
    def __init__(self) -> None:
        self.hosts: dict[str, FakeHost] = {}

    def host(self, name: str) -> FakeHost:
        return self.hosts.setdefault(name, FakeHost())


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_demo_starts_the_mn_client_without_keys_on_argv(path: Path, tmp_path: Path) -> None:
    from mininet_scripts.demo import Demo
    topo = load_topology(path)
    run_dir = private_run_dir(str(tmp_path / "demo-"))
    demo = Demo(topo, run_dir, "127.0.0.1:1", 1)
    demo.mnet = FakeNet()
    files = []
    for name, mn in topo.mobile_nodes.items():
        demo.start_mn_client(name)
        cmd = demo.mnet.host(name).started[-1]
        assert_no_key_on(cmd, topo)
        files += assert_key_files(cmd, mn)
    assert files and all(f.exists() for f in files)
    demo.close()                                     # teardown removes them
    assert not any(f.exists() for f in files)


def test_scenario_run_writes_a_private_topology_and_no_key_on_argv(tmp_path: Path) -> None:
    from mininet_scripts.scenario import ScenarioRun, load_scenario, resolve
    spec = load_scenario(resolve("multi-mn"))
    run_dir = private_run_dir(str(tmp_path / "scn-"))
    run = ScenarioRun(spec, run_dir, "127.0.0.1:1", 1)
    merged = Path(run.demo.topology_file)
    assert merged.parent == run_dir and mode(merged) == 0o600 and mode(run_dir) == 0o700
    assert key_material(run.topo) and any(k in merged.read_text()
                                           for k in key_material(run.topo))
    run.demo.mnet = FakeNet()
    for name, mn in run.topo.mobile_nodes.items():
        run.demo.start_mn_client(name)
        cmd = run.demo.mnet.host(name).started[-1]
        assert_no_key_on(cmd, run.topo)
        assert_key_files(cmd, mn)
    run.close()


def test_mn_custom_starts_the_mn_client_without_keys_on_argv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mininet.node import Host

    from mininet_scripts import mn_custom
    topo = load_topology(ROOT / "topology" / "default.yaml")
    mn = topo.mobile_nodes["mn1"]
    monkeypatch.setattr(Host, "config", lambda self, **_p: {})
    host = object.__new__(mn_custom.MobileNodeHost)   # no namespace, no shell
    fake = FakeHost()
    host.cmd = fake.cmd
    host.defaultIntf = fake.defaultIntf
    host.popen = fake.popen
    host.config(mipvpn_mobile_node=mn, mipvpn_topology=topo, mipvpn_run_dir=tmp_path)
    cmd = fake.started[-1]
    assert_no_key_on(cmd, topo)
    files = assert_key_files(cmd, mn)
    assert mode(tmp_path / "mn") == 0o700
    monkeypatch.setattr(Host, "terminate", lambda self: None)
    host.terminate()
    assert not any(f.exists() for f in files)


# ------------------------------------------------------------------ the MN client


BASE = ["--nai", "alice@home.example", "--home-address", "10.10.0.100",
        "--home-agent", "10.0.0.1", "--spi", "300", "--iface", "lo"]
AAA, HA = bytes(range(16)), bytes(range(16, 32))


@pytest.mark.parametrize("opt", ["--key", "--ha-key"])
def test_mn_client_refuses_a_key_on_argv(opt: str, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    with pytest.raises(SystemExit) as exc:
        mn_client.main([*BASE, opt, AAA.hex()])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{opt} is refused" in err and "ps" in err and AAA.hex() not in err


class _Runner:
    """Stands in for MobileNodeRunner: keeps the config, runs nothing."""

    configs: list[mn_state.MnConfig] = []

    def __init__(self, config: mn_state.MnConfig, iface: str, events: Any) -> None:
        _Runner.configs.append(config)
        self.events, self.stopping, self.service_update_requested = events, False, False

    def run(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_mn_client_reads_its_keys_from_files(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_client, "MobileNodeRunner", _Runner)
    monkeypatch.delenv(mn_client.AAA_KEY_ENV, raising=False)
    aaa = private_file(tmp_path / "aaa.key", AAA.hex() + "\n")
    ha = private_file(tmp_path / "ha.key", "  " + HA.hex().upper() + "\n")
    assert mn_client.main([*BASE, "--key-file", str(aaa), "--ha-spi", "400",
                           "--ha-key-file", str(ha)]) == 0
    conf = _Runner.configs[-1]
    assert (conf.key, conf.ha_spi, conf.ha_key) == (AAA, 400, HA)


def test_mn_client_reads_its_keys_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_client, "MobileNodeRunner", _Runner)
    monkeypatch.setenv(mn_client.AAA_KEY_ENV, AAA.hex())
    monkeypatch.setenv(mn_client.HA_KEY_ENV, HA.hex())
    assert mn_client.main([*BASE, "--ha-spi", "400"]) == 0
    conf = _Runner.configs[-1]
    assert (conf.key, conf.ha_key) == (AAA, HA)


def test_mn_client_without_a_key_or_with_a_bad_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(mn_client, "MobileNodeRunner", _Runner)
    monkeypatch.delenv(mn_client.AAA_KEY_ENV, raising=False)
    monkeypatch.delenv(mn_client.HA_KEY_ENV, raising=False)
    assert mn_client.main(BASE) == 2
    assert "--key-file PATH or set $MIPVPN_MN_AAA_KEY" in capsys.readouterr().err
    assert mn_client.main([*BASE, "--key-file", str(tmp_path / "missing")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = private_file(tmp_path / "bad", "zz" + AAA.hex())
    assert mn_client.main([*BASE, "--key-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not hex" in err and AAA.hex() not in err


# ------------------------------------------------------------------ charon's files


def test_charon_config_and_dir_are_private(tmp_path: Path) -> None:
    from controller.adapters.strongswan import CharonError, CharonProcess
    host = FakeHost()
    host.name, host.pid = "fa1", os.getpid()   # type: ignore[attr-defined]
    charon = CharonProcess(host, tmp_path / "gw", kernel_esp=False)   # type: ignore[arg-type]
    with pytest.raises(CharonError):   # `true` exits at once: files are written first
        charon.start(timeout=2)
    assert mode(tmp_path / "gw") == 0o700 and mode(charon.dir) == 0o700
    assert mode(charon.conf_path) == 0o600 and mode(charon.dir / "netns") == 0o600


# ------------------------------------------------------------------ the REST CLI


def test_cli_refuses_a_token_on_argv_and_reads_a_token_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from controller import cli
    for name in ("MIPVPN_TOKEN", "MIPVPN_OPERATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["status", "--url", "http://127.0.0.1:1", "--token", "t0ps3cret"]) == 2
    err = capsys.readouterr().err
    assert "--token is refused" in err and "t0ps3cret" not in err
    tok = private_file(tmp_path / "tok", "from-a-file\n")
    args = cli.argparse.Namespace(token=None, token_file=str(tok), run_dir=str(tmp_path))
    assert cli.resolve_token(args) == "from-a-file"
