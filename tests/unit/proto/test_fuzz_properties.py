"""bench/fuzz_codecs.py in --quick mode (2,000 inputs per codec), so it never rots, and
proof that it does catch a codec that lets a foreign exception escape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import fuzz_codecs
from controller.proto import diameter, mip


def test_quick_fuzz_run_is_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fuzz.json"
    assert fuzz_codecs.main(["--quick", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    reports = {r["codec"]: r for r in res["reports"]}
    # what README's Reliability table needs to name its source (issue 13)
    assert res["benchmark"] == "fuzz_codecs" and res["engine"] == "mutate"
    assert res["command"].startswith("python -m bench.fuzz_codecs")
    for key in ("code", "cpu", "cores", "loadavg", "time"):
        assert key in res["machine"]
    assert len(res["load_after"]) == 3
    for codec in ("mip", "diameter"):
        rep = reports[codec]
        assert rep["inputs"] >= fuzz_codecs.QUICK_INPUTS
        assert rep["unexpected"] == {}
        assert rep["decoded"] > 0 and sum(rep["rejected"].values()) > 0   # both paths hit
    assert len(reports["diameter"]["rejected"]) >= 5     # several distinct result codes
    text = capsys.readouterr().out
    assert "inputs/s" in text and "unexpected exceptions: 0" in text


def test_fuzzer_catches_a_leaking_codec(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    real_mip, real_dia = mip.decode, diameter.decode

    def leaky_mip(data: bytes) -> Any:
        if len(data) == 25:
            raise IndexError("planted")
        return real_mip(data)

    def leaky_dia(data: bytes) -> Any:
        if len(data) % 8 == 4:
            raise diameter.DiameterDecodeError(5012, 0, "undecodable: planted")
        return real_dia(data)

    monkeypatch.setattr(mip, "decode", leaky_mip)
    monkeypatch.setattr(diameter, "decode", leaky_dia)
    assert fuzz_codecs.main(["--inputs", "500"]) == 1
    text = capsys.readouterr().out
    assert "IndexError" in text and "catch-all" in text and "sample" in text
