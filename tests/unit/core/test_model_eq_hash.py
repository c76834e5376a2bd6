"""The VPN model's handwritten ``__eq__`` and ``__hash__`` (issue 15).

The ``dataclasses`` decorator's stay interpreted in the compiled build; a renewal hashes
a VpnInfo (the codec's cache of its AVP) and compares VpnInfos and TunnelSpecs several
times, each level of the nesting another interpreted call. The model's classes write
both, compiled. Asserted: they are written, they are the dataclass's (equal to a copy,
unequal when any one field differs, the hash of the fields' tuple), and they still
answer NotImplemented to another class.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from controller.model.dataclass_copy import replace
from controller.model.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo

CLASSES = [QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo]


def _samples() -> list[Any]:
    end_a = TunnelEnd("ha", "192.0.2.1", ("10.1.0.0/24",))
    end_b = TunnelEnd("fa1", "192.0.2.2", ("10.1.0.5/32",))
    spec = TunnelSpec("alice/ha-fa1", end_a, end_b, b"k" * 32, SecuritySpec("a", "b"),
                      QosSpec(1000, 46), "fa1")
    info = VpnInfo("alice@home.example", "10.1.0.5", "ha", "fa1", (spec,), "fa2", True,
                   "registration", spec, True)
    return [QosSpec(1000, 46), SecuritySpec("a", "b"), end_a, spec, info]


def _other(value: Any) -> Any:
    """A value of the same kind that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, str, bytes)):
        return value + type(value)(1 if isinstance(value, int) else "x" if
                                   isinstance(value, str) else b"x")
    if isinstance(value, tuple):
        return value[:-1] if value else ("x",)
    if dataclasses.is_dataclass(value):
        first = dataclasses.fields(value)[0].name
        return replace(value, **{first: _other(getattr(value, first))})
    raise AssertionError(value)


def _written(cls: type, name: str) -> bool:
    code = getattr(getattr(cls, name), "__code__", None)   # compiled: none
    return code is None or code.co_filename != "<string>"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_the_model_writes_its_eq_and_hash(cls: type) -> None:
    assert _written(cls, "__eq__") and _written(cls, "__hash__")


@pytest.mark.parametrize("obj", _samples(), ids=lambda o: type(o).__qualname__)
def test_eq_and_hash_are_the_dataclasss(obj: Any) -> None:
    fields = dataclasses.fields(obj)
    same = replace(obj)
    assert same == obj and not same != obj and hash(same) == hash(obj)
    assert hash(obj) == hash(tuple(getattr(obj, f.name) for f in fields))
    for f in fields:
        changed = replace(obj, **{f.name: _other(getattr(obj, f.name))})
        assert changed != obj and not changed == obj, f.name
    assert obj.__eq__(object()) is NotImplemented
    assert obj != (1, 2) and obj != object()
