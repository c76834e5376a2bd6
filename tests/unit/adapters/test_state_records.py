"""Issue 15: the restart records are encoded with orjson (about 7 % of a renewal's
instructions went to the standard library's JSON encoder, four records per renewal),
into the same compact JSON text as before, which every reader (``StateStore.load``,
older controllers, ``sqlite3`` by hand) reads as it did."""

from __future__ import annotations

import json
import sqlite3

import pytest

from controller.adapters.state import StateStore, encode_record

RECORD = {"vpn_info": {"nai": "mn1@home.example", "tunnels": [
    {"tunnel_id": "ha1-fa2", "psk": "00ff" * 8, "rate_kbps": 2000, "dscp": 46,
     "selectors": ["10.0.0.0/24"], "initiator": "a"}], "handoff": None,
    "smooth_handoff": True}, "expires": 1733500000.125, "lifetime": 1800,
    "port": 3, "name": "Zoë", 7: "an int key"}


def test_a_record_is_compact_json_text_that_json_reads_back() -> None:
    text = encode_record(RECORD)
    assert isinstance(text, str)
    assert json.loads(text) == json.loads(json.dumps(RECORD))
    assert ", " not in text and ": " not in text


def test_the_store_encodes_with_orjson(monkeypatch, tmp_path) -> None:
    import controller.adapters.state as state

    calls: list[object] = []
    real = state.orjson.dumps

    def counting(obj: object, *args: object, **kw: object) -> bytes:
        calls.append(obj)
        return real(obj, *args, **kw)

    monkeypatch.setattr(state.orjson, "dumps", counting)
    store = StateStore(tmp_path / "vpn.db")
    try:
        store.write([("ha", "mn1@home.example", RECORD)])
        assert len(calls) == 1
        assert store.load("ha")["ha"]["mn1@home.example"] == json.loads(json.dumps(RECORD))
    finally:
        store.close()
    raw = sqlite3.connect(tmp_path / "vpn.db").execute(
        "SELECT typeof(data), data FROM role_state").fetchone()
    assert raw[0] == "text" and json.loads(raw[1])["port"] == 3


def test_a_record_json_cannot_hold_is_refused_before_anything_is_written(tmp_path) -> None:
    store = StateStore(tmp_path / "vpn.db")
    try:
        store.write([("ha", "a", {"x": 1})])
        with pytest.raises(TypeError):
            store.write([("ha", "b", {"x": 2}), ("ha", "c", {"x": object()})])
        assert set(store.load("ha")["ha"]) == {"a"}
    finally:
        store.close()
