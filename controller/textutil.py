"""Plain-text tables: the one table printer of the CLI, the Mininet CLI and the
benchmarks (a leaf: imports nothing of the project)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence


def plain_cell(c: Any) -> str:
    """A cell as the CLI shows it: ``None`` is blank."""
    return "" if c is None else str(c)


def number_cell(c: Any) -> str:
    """A cell as the benchmark reports show it: ``None`` is ``-``; floats with 3
    significant digits below 10, one decimal below 1000, thousands separators above."""
    if c is None:
        return "-"
    if isinstance(c, float):
        return f"{c:.3g}" if abs(c) < 10 else f"{c:,.0f}" if abs(c) >= 1000 else f"{c:.1f}"
    return str(c)


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *,
          numbers: bool = False) -> str:
    """An aligned table, columns separated by two spaces.

    Default (CLI): cells left-aligned, trailing blanks cut, no rule.  ``numbers=True``
    (benchmark reports): cells right-aligned and formatted by :func:`number_cell`, a rule
    of dashes under the header."""
    fmt = number_cell if numbers else plain_cell
    body = [[fmt(c) for c in r] for r in rows]
    head = [str(h) for h in headers]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(head)]
    if not numbers:
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                         for r in [head, *body])
    out = ["  ".join(h.rjust(w) for h, w in zip(head, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in body]
    return "\n".join(out)
