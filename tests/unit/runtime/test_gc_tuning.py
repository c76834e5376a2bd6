"""The controller's cyclic-GC tuning (issue 15, p99): short young collections, rare
full ones, long-lived objects frozen (bench/results/registration-gc-2026-12-06/)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from controller.launcher import tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_young_collections_stay_short_and_full_ones_rare(restore_gc: None) -> None:
    tune_gc()
    young, middle, old = gc.get_threshold()
    # a gen-0 collection of 10,000 objects paused the event loop 40-60 ms with 10,000
    # users; 700 (CPython's default) about 0.3 ms
    assert young <= 1000
    # a full collection (0.4-1.8 s with 10,000 users) after this many gen-0 ones
    assert middle * old >= 10_000
    assert gc.get_freeze_count() > 0
