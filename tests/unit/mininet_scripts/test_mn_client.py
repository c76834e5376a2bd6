"""MobileNodeState (pure) driven with a fake clock; no sockets."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import struct
from typing import Any

import pytest

from controller.proto import mip
from mininet_scripts import mn_client, mn_state
from mininet_scripts.mn_state import (
    CVSE_PREVIOUS_FA,
    VENDOR_ID,
    InstallDefaultRoute,
    LogEvent,
    MnConfig,
    MobileNodeState,
    SendRrq,
    SendSolicitation,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
CONFIG = MnConfig("alice@home.example", "10.10.0.100", "10.0.0.1", 300, KEY, 300)
FA1_MAC = "02:00:00:00:21:01"
FA2_MAC = "02:00:00:00:22:01"


def adv(router: str, coa: str | None = None, flags: int = mip.ADV_FLAG_F | mip.ADV_FLAG_T,
        reg_lifetime: int = 1800) -> mip.AgentAdvertisement:
    return mip.AgentAdvertisement(router, 0, 1800, 1, reg_lifetime, flags, [coa or router])


def rrqs(actions: list) -> list[SendRrq]:
    return [a for a in actions if isinstance(a, SendRrq)]


def events(actions: list) -> list[str]:
    return [a.event for a in actions if isinstance(a, LogEvent)]


def reply_to(rrq: SendRrq, code: int = 0, lifetime: int = 300) -> mip.RegistrationReply:
    return mip.RegistrationReply(code, lifetime, "10.10.0.100", "10.0.0.1", rrq.identification)


@pytest.fixture
def mn() -> MobileNodeState:
    state = MobileNodeState(CONFIG, wall_offset=1_700_000_000.0, rand=lambda: 0)
    assert isinstance(state.start(0.0)[0], SendSolicitation)
    return state


def register(mn: MobileNodeState, now: float, router: str, mac: str) -> SendRrq:
    sent = rrqs(mn.on_advertisement(now, adv(router), mac))
    assert len(sent) == 1
    acts = mn.on_reply(now + 0.01, reply_to(sent[0]))
    assert InstallDefaultRoute(router, mac) in acts
    return sent[0]


def test_first_advert_sends_authenticated_rrq(mn: MobileNodeState) -> None:
    acts = mn.on_advertisement(1.0, adv("10.21.0.1"), FA1_MAC)
    assert events(acts) == ["advert", "rrq_sent"]
    (send,) = rrqs(acts)
    msg = mip.decode(send.payload)
    assert isinstance(msg, mip.RegistrationRequest)
    assert (msg.flags, msg.lifetime, msg.home_address, msg.home_agent, msg.care_of_address) == (
        mip.FLAG_T, 300, "10.10.0.100", "10.0.0.1", "10.21.0.1")
    # extension order: NAI then MN-AAA, no previous-FA CVSE on first registration
    assert [type(e) for e in msg.extensions] == [mip.NaiExtension, mip.GeneralizedAuth]
    assert msg.nai == "alice@home.example"
    assert mip.verify_auth(send.payload, mip.AuthKind.MN_AAA, KEY)
    # independent HMAC-MD5 over everything up to and including the SPI
    n = len(send.payload) - 16
    assert send.payload[n:] == hmac.new(KEY, send.payload[:n], hashlib.md5).digest()
    # NTP timestamp identification from the injected wall clock
    assert abs(mip.identification_time(msg.identification) - 1_700_000_001.0) < 1e-3


def test_non_fa_advert_ignored(mn: MobileNodeState) -> None:
    assert mn.on_advertisement(1.0, adv("10.10.0.1", flags=mip.ADV_FLAG_H), FA1_MAC) == []


def test_lifetime_capped_by_advertisement(mn: MobileNodeState) -> None:
    (send,) = rrqs(mn.on_advertisement(1.0, adv("10.21.0.1", reg_lifetime=60), FA1_MAC))
    assert mip.decode(send.payload).lifetime == 60  # type: ignore[union-attr]


def test_accept_installs_route_and_repeated_adverts_are_quiet(mn: MobileNodeState) -> None:
    send = register(mn, 1.0, "10.21.0.1", FA1_MAC)
    assert mn.registered and mn.registered_coa == "10.21.0.1"
    assert mn.on_advertisement(2.0, adv("10.21.0.1"), FA1_MAC) == []
    assert rrqs(mn.tick(2.0)) == []
    assert send.care_of_address == "10.21.0.1"


def test_reply_with_wrong_identification_ignored(mn: MobileNodeState) -> None:
    (send,) = rrqs(mn.on_advertisement(1.0, adv("10.21.0.1"), FA1_MAC))
    bad = mip.RegistrationReply(0, 300, "10.10.0.100", "10.0.0.1", send.identification ^ 1)
    assert events(mn.on_reply(1.1, bad)) == ["rrp_ignored"]
    assert not mn.registered and mn.pending is not None
    # high 32 bits may differ (HA puts its own time there): only low 32 are matched
    ok = mip.RegistrationReply(0, 300, "10.10.0.100", "10.0.0.1",
                               send.identification ^ (0xABCD << 32))
    assert "registered" in events(mn.on_reply(1.2, ok))


def test_move_sends_previous_fa_cvse(mn: MobileNodeState) -> None:
    register(mn, 1.0, "10.21.0.1", FA1_MAC)
    acts = mn.on_advertisement(10.0, adv("10.22.0.1"), FA2_MAC)
    assert events(acts) == ["advert", "rrq_sent"]
    (send,) = rrqs(acts)
    msg = mip.decode(send.payload)
    assert [type(e) for e in msg.extensions] == [  # type: ignore[union-attr]
        mip.NaiExtension, mip.CriticalVendorExtension, mip.GeneralizedAuth]
    cvse = msg.vendor_extension(VENDOR_ID, CVSE_PREVIOUS_FA)  # type: ignore[union-attr]
    assert cvse is not None and cvse.data == bytes([10, 21, 0, 1])
    assert mip.verify_auth(send.payload, mip.AuthKind.MN_AAA, KEY)
    acts = mn.on_reply(10.05, reply_to(send))
    assert InstallDefaultRoute("10.22.0.1", FA2_MAC) in acts
    assert mn.registered_coa == "10.22.0.1"


def test_retransmit_with_backoff_then_timeout(mn: MobileNodeState) -> None:
    (first,) = rrqs(mn.on_advertisement(0.0, adv("10.21.0.1"), FA1_MAC))
    idents = [first.identification]
    times = []
    now = 0.0
    while True:
        now += 0.25  # exact in binary floating point
        acts = mn.tick(now)
        for s in rrqs(acts):
            idents.append(s.identification)
            times.append(round(now, 2))
        if "timeout" in events(acts):
            break
        assert now < 60
    assert len(idents) == mn_state.MAX_ATTEMPTS
    assert idents == sorted(set(idents))  # new, strictly increasing identification each time
    assert times == [1.0, 3.0, 7.0, 15.0]  # 1, 2, 4, 8 s
    assert round(now, 2) == 31.0  # last wait 16 s
    assert mn.pending is None and not mn.registered
    # same agent keeps advertising: backs off DENIED_RETRY, then tries again
    assert rrqs(mn.on_advertisement(32.0, adv("10.21.0.1"), FA1_MAC)) == []
    assert len(rrqs(mn.tick(31.0 + mn_state.DENIED_RETRY))) == 1


def test_late_reply_to_earlier_attempt_accepted(mn: MobileNodeState) -> None:
    (first,) = rrqs(mn.on_advertisement(0.0, adv("10.21.0.1"), FA1_MAC))
    assert len(rrqs(mn.tick(1.0))) == 1
    assert "registered" in events(mn.on_reply(1.1, reply_to(first)))


def test_renewal_at_80_percent(mn: MobileNodeState) -> None:
    register(mn, 0.0, "10.21.0.1", FA1_MAC)  # granted 300 at t=0.01
    assert rrqs(mn.tick(240.0)) == []
    (renew,) = rrqs(mn.tick(240.02))
    msg = mip.decode(renew.payload)
    assert mip.CriticalVendorExtension not in [type(e) for e in msg.extensions]  # type: ignore
    assert "registered" in events(mn.on_reply(240.05, reply_to(renew, lifetime=100)))
    assert rrqs(mn.tick(320.0)) == []
    assert len(rrqs(mn.tick(320.06))) == 1


def test_denial_logged_and_backoff(mn: MobileNodeState) -> None:
    (send,) = rrqs(mn.on_advertisement(0.0, adv("10.21.0.1"), FA1_MAC))
    acts = mn.on_reply(0.1, reply_to(send, code=mip.CODE_HA_MN_FAILED_AUTH))
    assert events(acts) == ["rrp", "denied"]
    assert not mn.registered
    assert rrqs(mn.on_advertisement(1.0, adv("10.21.0.1"), FA1_MAC)) == []
    # a different agent is tried at once
    assert len(rrqs(mn.on_advertisement(2.0, adv("10.22.0.1"), FA2_MAC))) == 1


def test_identification_mismatch_retries_with_ha_clock(mn: MobileNodeState) -> None:
    (send,) = rrqs(mn.on_advertisement(0.0, adv("10.21.0.1"), FA1_MAC))
    ha_time = mip.ntp_identification(1_800_000_000.0)
    rrp = mip.RegistrationReply(133, 0, "10.10.0.100", "10.0.0.1",
                                (ha_time & ~0xFFFFFFFF) | (send.identification & 0xFFFFFFFF))
    acts = mn.on_reply(0.1, rrp)
    (retry,) = rrqs(acts)
    assert abs(mip.identification_time(retry.identification) - 1_800_000_000.0) < 2


def test_solicits_after_silence(mn: MobileNodeState) -> None:
    assert mn.tick(2.9) == []
    acts = mn.tick(3.0)
    assert SendSolicitation() in acts
    assert SendSolicitation() not in mn.tick(4.0)
    mn.on_advertisement(5.0, adv("10.10.0.1", flags=mip.ADV_FLAG_H), FA1_MAC)
    assert SendSolicitation() not in mn.tick(7.9)
    assert SendSolicitation() in mn.tick(8.0)


def test_next_deadline(mn: MobileNodeState) -> None:
    assert mn.next_deadline() == 3.0
    mn.on_advertisement(0.5, adv("10.21.0.1"), FA1_MAC)
    assert mn.next_deadline() == 1.5


def test_parse_frame_and_event_log() -> None:
    icmp = mip.AgentAdvertisement("10.21.0.1", 0, 1800, 1, 300, mip.ADV_FLAG_F,
                                  ["10.21.0.1"]).encode()
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 1, 1, 0,
                     bytes([10, 21, 0, 1]), bytes([224, 0, 0, 1]))
    frame = bytes.fromhex("01005e000001" "020000002101" "0800") + ip + icmp + b"\0\0"
    assert mn_client.parse_frame(frame) == (FA1_MAC, icmp)
    assert mn_client.parse_frame(frame[:12] + b"\x86\xdd" + frame[14:]) is None
    buf = io.StringIO()
    mn_client.EventLog(buf).write(1.5, "registered", {"coa": "10.21.0.1", "code": 0})
    assert json.loads(buf.getvalue()) == {"t": 1.5, "event": "registered",
                                          "coa": "10.21.0.1", "code": 0}


def test_parse_args() -> None:
    args = mn_client.parse_args(["--nai", "a@b", "--home-address", "10.10.0.100",
                                 "--home-agent", "10.0.0.1", "--spi", "300", "--key-file", "k",
                                 "--iface", "mn1-eth0"])
    assert args.lifetime == 300 and args.events is None


# ------------------------------------------------------------------ MN-FA key (issue 11)


def test_mn_fa_key_from_the_nonce_signs_the_next_rrqs(mn: MobileNodeState) -> None:
    from controller.proto import mip_keys
    sent = rrqs(mn.on_advertisement(0.0, adv("10.1.0.1", "10.0.0.11"), FA1_MAC))
    assert mip.decode(sent[0].payload).find(mip.MnFaAuth) is None    # no key yet
    nonce = bytes(range(16))
    rrp = reply_to(sent[0])
    rrp.extensions.append(mip_keys.nonce_reply_extension(
        mip_keys.NonceReply(mip_keys.MN_FA_SPI, 300, nonce)))
    mn.on_reply(0.01, rrp)
    key = mip_keys.mn_fa_key(KEY, nonce, CONFIG.nai)
    assert key == hmac.new(KEY, nonce + CONFIG.nai.encode(), hashlib.sha1).digest()
    assert mn.mn_fa_key == key and mn.mn_fa_spi == mip_keys.MN_FA_SPI
    move = rrqs(mn.on_advertisement(1.0, adv("10.2.0.1", "10.0.0.12"), FA2_MAC))[0]
    msg = mip.decode(move.payload)
    assert [type(e) for e in msg.extensions][-2:] == [mip.GeneralizedAuth, mip.MnFaAuth]
    assert mip_keys.verify_mn_fa(move.payload, mip_keys.MN_FA_SPI, key)
    assert mip.verify_auth(move.payload, mip.AuthKind.MN_AAA, KEY)   # still verifies
    # a locally answered move has no nonce: the key stays; a denial changes nothing
    mn.on_reply(1.01, reply_to(move))
    assert mn.mn_fa_key == key
    bad = reply_to(rrqs(mn.request_service_update(2.0))[0], code=65)
    bad.extensions.append(mip_keys.nonce_reply_extension(
        mip_keys.NonceReply(mip_keys.MN_FA_SPI, 300, bytes(16))))
    mn.on_reply(2.01, bad)
    assert mn.mn_fa_key == key


def test_malformed_nonce_reply_is_ignored(mn: MobileNodeState) -> None:
    from controller.proto import mip_keys
    sent = rrqs(mn.on_advertisement(0.0, adv("10.1.0.1", "10.0.0.11"), FA1_MAC))
    rrp = reply_to(sent[0])
    rrp.extensions.append(mip.NormalVendorExtension(VENDOR_ID,
                                                    mip_keys.NVSE_MN_FA_NONCE_REPLY, b"x"))
    mn.on_reply(0.01, rrp)
    assert mn.registered and mn.mn_fa_key is None
    with pytest.raises(mip.MipDecodeError):
        mip_keys.nonce_reply(rrp)
    spi_reserved = mip.NormalVendorExtension(VENDOR_ID, mip_keys.NVSE_MN_FA_NONCE_REPLY,
                                             struct.pack("!II", 300, 7) + bytes(16))
    with pytest.raises(mip.MipDecodeError):
        mip_keys.nonce_reply(mip.RegistrationReply(0, 300, "10.10.0.100", "10.0.0.1", 1,
                                                   [spi_reserved]))


# ------------------------------------------------------------------ S bit (issue 14)


def test_simultaneous_sets_s_in_every_rrq() -> None:
    import dataclasses
    state = MobileNodeState(dataclasses.replace(CONFIG, simultaneous=True),
                            wall_offset=1_700_000_000.0, rand=lambda: 0)
    state.start(0.0)
    first = register(state, 1.0, "10.21.0.1", FA1_MAC)
    moved = rrqs(state.on_advertisement(5.0, adv("10.22.0.1"), FA2_MAC))
    for sent in (first, *moved):
        assert mip.decode(sent.payload).flags == mip.FLAG_T | mip.FLAG_S
    assert mip.decode(moved[0].payload).care_of_address == "10.22.0.1"


def test_without_it_no_s(mn: MobileNodeState) -> None:
    sent = register(mn, 1.0, "10.21.0.1", FA1_MAC)
    assert not mip.decode(sent.payload).flags & mip.FLAG_S


def test_cli_simultaneous_flag() -> None:
    base = ["--nai", "a@b", "--home-address", "10.10.0.100", "--home-agent", "10.0.0.1",
            "--spi", "300", "--key-file", "k", "--iface", "mn1-eth0"]
    assert mn_client.parse_args(base).simultaneous is False
    assert mn_client.parse_args(base + ["--simultaneous"]).simultaneous is True


@pytest.mark.parametrize("seamless", [False, True])
def test_demo_passes_simultaneous_for_a_seamless_profile(tmp_path: Any, seamless: bool) -> None:
    """The demo and the scenario runner start the MN client through
    ``mn_client_command``: ``--simultaneous`` exactly when the MN's profile has
    seamless_handover on."""
    import dataclasses
    from pathlib import Path

    from controller.config import load_topology
    from mininet_scripts.demo import mn_client_command
    topo = load_topology(Path(__file__).resolve().parents[3] / "topology" / "default.yaml")
    nai = topo.mobile_nodes["mn1"].nai
    topo.vpn_profiles[nai] = dataclasses.replace(topo.vpn_profiles[nai],
                                                 seamless_handover=seamless)
    cmd, _files = mn_client_command("python3", topo, "mn1", "mn1-eth0",
                                    tmp_path / "ev.jsonl", tmp_path / "keys")
    assert ("--simultaneous" in cmd) is seamless
    assert mn_client.parse_args(cmd[3:]).simultaneous is seamless
