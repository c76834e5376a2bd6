"""``controller.model.dataclass_copy.replace``: ``dataclasses.replace`` for the compiled
build (issue 15). The standard library's runs interpreted, about five attribute loads
per field, on every renewal ~10 times; this one is compiled with the model and keeps
each class's init fields in a table. Same results, same errors."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from controller.core.binding import Binding
from controller.model.dataclass_copy import replace
from controller.model.vpn import QosSpec, TunnelEnd, TunnelSpec, VpnInfo
from controller.proto.diameter.messages import AmRequest, MsaKey

ROOT = Path(__file__).resolve().parents[3]


def _info() -> VpnInfo:
    spec = TunnelSpec("alice/ha-fa1", TunnelEnd("ha", "192.0.2.1", ("10.1.0.0/24",)),
                      TunnelEnd("fa1", "192.0.2.2", ("10.1.0.5/32",)), b"k" * 32,
                      qos=QosSpec(1000, 46), initiator="fa1")
    return VpnInfo("alice@home.example", "10.1.0.5", "ha", "fa1", (spec,),
                   smooth_handoff=True)


def test_the_result_equals_the_standard_librarys() -> None:
    info = _info()
    for changes in ({}, {"foreign_agent": "fa2"},
                    {"foreign_agent": "fa2", "previous_foreign_agent": "fa1",
                     "handoff": info.tunnels[0], "tunnels": ()}):
        got, want = replace(info, **changes), dataclasses.replace(info, **changes)
        assert got == want and type(got) is type(want)
        assert got is not info
    assert info.foreign_agent == "fa1"            # the original is untouched
    key = MsaKey(7, b"s" * 20)
    assert replace(key, spi=8) == MsaKey(8, b"s" * 20, 2)


def test_a_field_left_out_is_the_same_object_as_the_originals() -> None:
    b = Binding("a@b", "10.1.0.5", "192.0.2.2", "fa1", _info(), 300, 10.0, 1)
    b.distributed.add("cngw")
    c = replace(b, expires=20.0)
    assert c.distributed is b.distributed and c.vpn_info is b.vpn_info    # as the stdlib's
    assert c.expires == 20.0 and b.expires == 10.0


def test_post_init_runs_on_the_copy() -> None:
    with pytest.raises(TypeError):
        replace(_info(), smooth_handoff=1)


def test_an_unknown_field_is_a_type_error_as_in_the_standard_library() -> None:
    with pytest.raises(TypeError, match="no_such_field"):
        replace(MsaKey(7, b"s" * 20), no_such_field=1)
    with pytest.raises(TypeError, match="dataclass"):
        replace(object(), x=1)


def test_every_field_of_a_long_message_is_carried_over() -> None:
    amr = AmRequest("s;1", "fa1.visited", "visited", "home", "alice@home.example", b"rrq",
                    256, 40, 20, 60, home_address="10.1.0.5", feature_vector=3,
                    route_record=("aaaf.visited",), proxy_info=(b"p",))
    out = replace(amr, originating_foreign_aaa=("visited", "aaaf.visited"), hop_by_hop=9)
    for f in dataclasses.fields(AmRequest):
        if f.name not in ("originating_foreign_aaa", "hop_by_hop"):
            assert getattr(out, f.name) == getattr(amr, f.name), f.name
    assert out.originating_foreign_aaa == ("visited", "aaaf.visited") and out.hop_by_hop == 9


def test_the_compiled_code_uses_this_replace_not_the_standard_librarys() -> None:
    users = []
    for pkg in ("controller/core", "controller/proto", "controller/model"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "dataclasses" \
                        and any(a.name == "replace" for a in node.names):
                    users.append(path.relative_to(ROOT).as_posix())
    assert users == []
