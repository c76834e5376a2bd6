"""The gateways' reconcile marks (``_touched``, ``_added``, ``_initiated``) are pruned
every tick: the prune must cost what it drops, not the number of tunnels (an idle
controller with 10,000 MNs spent 10-20 ms of every second walking them)."""

from __future__ import annotations

from typing import Any, Iterator

from controller.runtime.gateways import Gateways
from controller.runtime.marks import stamp
from controller.testing.gateways import RecordingGateway


class _Counted(dict):  # type: ignore[type-arg]
    """A marks dict that counts the entries a prune looks at."""

    looked = 0

    def items(self) -> Any:
        outer = self

        def walk() -> Iterator[tuple[Any, float]]:
            for kv in dict.items(outer):
                outer.looked += 1
                yield kv
        return walk()


def _gateways() -> Gateways:
    return Gateways({"ha": RecordingGateway("ha")}, {}, {})  # type: ignore[arg-type]


def test_prune_drops_the_old_marks_only() -> None:
    gws = _gateways()
    for i in range(2000):
        stamp(gws._touched, ("ha", f"t{i}"), float(i))
    stamp(gws._touched, ("ha", "t5"), 1999.0)        # set again: fresh
    gws.prune_reconcile_marks(now=2000.0, keep=300.0)
    assert set(gws._touched) == {("ha", f"t{i}") for i in range(1700, 2000)} | {("ha", "t5")}


def test_prune_looks_at_what_it_drops_not_at_every_tunnel() -> None:
    gws = _gateways()
    gws._added = _Counted()
    for i in range(20_000):
        stamp(gws._added, ("ha", f"t{i}"), 1000.0 + i * 0.001)   # all within ``keep``
    gws._added.looked = 0
    gws.prune_reconcile_marks(now=1030.0, keep=300.0)
    assert len(gws._added) == 20_000 and gws._added.looked <= 1


def test_stamp_moves_a_key_to_the_newest_end() -> None:
    marks: dict[str, float] = {}
    stamp(marks, "a", 1.0)
    stamp(marks, "b", 2.0)
    stamp(marks, "a", 3.0)
    assert list(marks.items()) == [("b", 2.0), ("a", 3.0)]
