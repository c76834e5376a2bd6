"""The codec's numbers (issue 15): the IETF AVP codes it defines are python-diameter's,
and every number of ``numbers`` and ``vendor`` is declared ``Final``, so that the
compiled codec uses it as a constant instead of looking it up in a module's globals at
each use; the compiled codec modules take the AVP codes from ``numbers``."""

from __future__ import annotations

import ast
from pathlib import Path

import diameter.message.constants as pd_constants

from controller.proto.diameter import numbers

#: the sources (a compiled build's modules live elsewhere)
CODEC = Path(__file__).resolve().parents[3] / "controller" / "proto" / "diameter"


def test_avp_codes_are_python_diameters() -> None:
    ours = {k: v for k, v in vars(numbers).items() if k.startswith("AVP_")
            and hasattr(pd_constants, k)}
    assert len(ours) >= 40
    assert {k: getattr(pd_constants, k) for k in ours} == ours


def _not_final(source: str) -> list[str]:
    """Module-level UPPER_CASE names bound without a ``Final`` annotation (read from the
    source: a compiled module keeps no ``__annotations__``)."""
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            out += [n.id for t in node.targets for n in ast.walk(t)
                    if isinstance(n, ast.Name) and n.id.isupper()]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id.isupper():
            ann = node.annotation
            name = ann.value if isinstance(ann, ast.Subscript) else ann
            if not (isinstance(name, ast.Name) and name.id == "Final"):
                out.append(node.target.id)
    return out


def test_every_number_is_final() -> None:
    for name in ("numbers.py", "vendor.py"):
        source = (CODEC / name).read_text()
        assert "VENDOR_ID" in source or "SUCCESS" in source
        assert _not_final(source) == [], name
    assert _not_final("A = 1\nB: int = 2\nC: Final = 3\nD, E = 4, 5") == ["A", "B", "D", "E"]


def test_the_fast_codec_takes_its_avp_codes_from_numbers() -> None:
    for name in ("decoding.py", "templates.py", "agents.py", "numbers.py"):
        tree = ast.parse((CODEC / name).read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert "diameter.message.constants" not in imported, name
