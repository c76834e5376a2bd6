"""The one table printer (``controller.textutil.table``) gives what the CLI's
``table(headers, rows)`` and the benchmarks' ``table(rows, header)`` gave before they
were merged (issue 12); expected text recorded from the old functions."""

from __future__ import annotations

from controller.textutil import table

ROWS = [["xyz", 1, 2.5], [None, "b", 12345.6], ["", 0.0123, 150.25]]


def test_cli_table() -> None:
    assert table(["A", "LONGER", "C"], ROWS) == (
        "A    LONGER  C\nxyz  1       2.5\n     b       12345.6\n     0.0123  150.25")
    assert table(["A", "B"], []) == "A  B"


def test_benchmark_table() -> None:
    assert table(["A", "LONGER", "C"], ROWS, numbers=True) == (
        "  A  LONGER       C\n---  ------  ------\nxyz       1     2.5\n"
        "  -       b  12,346\n     0.0123   150.2")
    assert table(["A", "B"], [], numbers=True) == "A  B\n-  -"


def test_rows_may_be_an_iterator() -> None:
    assert table(["N"], iter([[1], [22]]), numbers=True) == " N\n--\n 1\n22"
