"""The hot dataclasses' handwritten ``__init__`` (issue 15).

mypyc compiles the methods written in a dataclass's body, but the ones the
``dataclasses`` decorator generates at import (``__init__`` among them) stay interpreted
in the compiled build; a frozen one sets each field through ``object.__setattr__``.
Per renewal that was ~470 k of ~4.2 M instructions (callgrind, docs/decisions.md
2026-12-07). The classes a registration builds therefore write their ``__init__``
(``object.__setattr__(self, "f", f)``, which mypyc turns into a direct store). Asserted
here: the hot classes have one, and every handwritten ``__init__`` of a dataclass in the
compiled set takes the dataclass's fields, in order, with their defaults, and sets each
field to its argument.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller import build_compiled
from controller.core import (aaa_foreign, aaa_home, actions, binding, fa_conf, fa_tunnels,
                             flows, ha_tunnels, handover)
from controller.model import vpn
from controller.proto import mip_keys
from controller.proto.diameter import messages as dm
from controller.proto.mip import extensions as ext
from controller.proto.mip import messages as mm

# what one renewal constructs (the callgrind dump's callers of the interpreted __init__)
HOT: list[type] = [
    dm.AmRequest, dm.AmAnswer, dm.HaRequest, dm.HaAnswer, dm.MsaKey, dm.MnFaNonce,
    vpn.QosSpec, vpn.TunnelEnd, vpn.TunnelSpec, vpn.VpnInfo,
    mm.RegistrationRequest, mm.RegistrationReply,
    ext.NaiExtension, ext.GeneralizedAuth, ext.NormalVendorExtension, ext.MnHaAuth,
    ext.MnFaAuth, ext.FaHaAuth, ext._ExtSpan,
    flows.FlowSpec, flows.FlowMod, fa_conf.Pending, mip_keys.NonceReply, binding.Binding,
    aaa_home.SessionKeys, aaa_foreign.CachedSession, ha_tunnels.TunnelSet,
    handover.HandoverRecord, fa_tunnels.FaTunnels,
    # the actions the roles return (compiled since the tenth steps)
    *[c for c in vars(actions).values() if isinstance(c, type)
      and c.__module__ == actions.__name__ and dataclasses.is_dataclass(c)],
]


def _generated(cls: type) -> bool:
    """True when ``cls.__init__`` is the one ``dataclasses`` made (exec'd from a string)."""
    code = getattr(cls.__init__, "__code__", None)   # a compiled method has none
    return code is not None and code.co_filename == "<string>"


def _handwritten() -> list[type]:
    out = []
    for rel in build_compiled.compiled_sources():
        mod = importlib.import_module(build_compiled.module_name(rel))
        for obj in vars(mod).values():
            if (isinstance(obj, type) and obj.__module__ == mod.__name__
                    and dataclasses.is_dataclass(obj) and not _generated(obj)):
                out.append(obj)
    return out


HANDWRITTEN = _handwritten()
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__qualname__)
def test_a_class_a_registration_builds_writes_its_init(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    assert not _generated(cls), f"{cls.__qualname__}: the dataclasses-generated __init__"


def test_the_hot_classes_are_found_by_the_scan() -> None:
    assert set(HOT) <= set(HANDWRITTEN)


def problems() -> list[str]:
    """Each handwritten ``__init__``: its parameters are the dataclass's init fields, in
    order, with their defaults (None for a default_factory field), and it sets each field
    to its own argument (a distinct marker object per field; a default_factory field left
    out gets a new value of the factory). Needs the pure build: a compiled method has no
    signature, and its native attributes refuse a marker of the wrong type."""
    out = []
    for cls in _handwritten():
        name = cls.__qualname__
        fields = [f for f in dataclasses.fields(cls) if f.init]
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        if [p.name for p in params] != [f.name for f in fields]:
            out.append(f"{name}: parameters {[p.name for p in params]}")
            continue
        for f, p in zip(fields, params):
            if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
                out.append(f"{name}.{f.name}: {p.kind}")
            if f.default is not dataclasses.MISSING:
                want: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                want = None
            else:
                want = inspect.Parameter.empty
            if not (p.default is want or p.default == want):
                out.append(f"{name}.{f.name}: default {p.default!r}, field's {want!r}")
        if hasattr(cls, "__post_init__"):
            continue        # validates its values: VpnInfo's is asserted after the loop
        marks = {f.name: object() for f in fields}
        obj = cls(**marks)
        out += [f"{name}.{n}: not set from its argument" for n, m in marks.items()
                if getattr(obj, n) is not m]
        required = {f.name: marks[f.name] for f in fields
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING}
        for f in fields:
            if f.default_factory is not dataclasses.MISSING:
                a, b = cls(**required), cls(**required)
                if getattr(a, f.name) != f.default_factory() or \
                        getattr(a, f.name) is getattr(b, f.name):
                    out.append(f"{name}.{f.name}: not a new {f.default_factory!r}()")
    try:
        vpn.VpnInfo("a@b", "10.0.0.1", "ha", "fa1", (), smooth_handoff=1)  # type: ignore[arg-type]
        out.append("VpnInfo: __post_init__ not run (an int option accepted)")
    except TypeError as e:
        if "must be bool" not in str(e):
            out.append(f"VpnInfo: {e}")
    return out


def test_every_handwritten_init_takes_and_sets_the_fields_as_dataclasses_would() -> None:
    code = ("from tests.unit.test_dataclass_inits import problems, HANDWRITTEN\n"
            "from controller import compiled\n"
            "assert not compiled.loaded_compiled(), compiled.loaded_compiled()\n"
            "print(len(HANDWRITTEN)); print('\\n'.join(problems()))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "MIPVPN_PURE": "1"})
    assert proc.returncode == 0, proc.stderr
    count, *found = proc.stdout.strip().splitlines()
    assert int(count) >= len(HOT)
    assert [line for line in found if line] == []


def test_vpn_info_still_refuses_an_int_option() -> None:
    # pure: its __post_init__ (problems() checks the message); compiled: the native bool
    with pytest.raises(TypeError):
        vpn.VpnInfo("a@b", "10.0.0.1", "ha", "fa1", (), smooth_handoff=1)  # type: ignore[arg-type]


def test_replace_and_equality_still_work_through_the_handwritten_init() -> None:
    a = dm.MsaKey(7, b"k" * 20)
    assert dataclasses.replace(a, spi=8) == dm.MsaKey(8, b"k" * 20, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.spi = 9  # type: ignore[misc]
    assert hash(a) == hash(dm.MsaKey(7, b"k" * 20))
