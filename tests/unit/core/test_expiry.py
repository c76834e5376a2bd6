"""ExpiryDict: due entries found without a scan; superseded / deleted entries skipped."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.expiry import ExpiryDict


@dataclass(frozen=True)
class Rec:
    expires: float


def test_due_reports_expired_once_and_skips_superseded() -> None:
    d: ExpiryDict[str, Rec] = ExpiryDict()
    d["a"] = Rec(10)
    d["b"] = Rec(5)
    d["a"] = Rec(20)              # renewal: the entry for 10 is stale
    d["c"] = Rec(7)
    del d["c"]                    # deleted before it was due
    assert d.due(4) == []
    assert d.due(10) == ["b"]
    del d["b"]
    assert d.due(19) == []
    assert d.due(25) == ["a"]
    assert d.due(25) == []        # each due key is reported once


def test_custom_expiry_and_compaction_keep_results() -> None:
    d: ExpiryDict[int, tuple[str, float]] = ExpiryDict(lambda v: v[1])
    d.COMPACT_SLACK = 4
    for i in range(100):          # many renewals of few keys: the heap is compacted
        d[i % 3] = ("x", float(i))
    assert len(d._heap) <= 2 * len(d) + d.COMPACT_SLACK + 1
    assert d.due(98) == [1, 2]    # last values: key 1 at 97, key 2 at 98, key 0 at 99
    assert d.due(1000) == [0]
    assert d.due(1000) == []      # reported keys not removed by the caller stay silent


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.one_of(st.none(), st.integers(0, 50))),
                max_size=60), st.integers(0, 60))
def test_due_matches_a_scan(ops: list[tuple[str, int | None]], now: int) -> None:
    d: ExpiryDict[str, Rec] = ExpiryDict()
    ref: dict[str, Rec] = {}
    for key, when in ops:
        if when is None:
            d.pop(key, None)
            ref.pop(key, None)
        else:
            d[key] = ref[key] = Rec(when)
    assert dict(d) == ref
    assert sorted(d.due(now)) == sorted(k for k, v in ref.items() if v.expires <= now)
