"""``RoleKey`` survives copy and pickle as itself: a typed key with its kind and name
(the runtime's role table and the persistence rows hold them)."""

from __future__ import annotations

import copy
import pickle

import pytest

from controller.core.role import RoleKey


@pytest.mark.parametrize("key", [RoleKey("fa", "fa1"), RoleKey("ha"), RoleKey("aaaf", "d-a")],
                         ids=str)
def test_role_key_round_trips_through_copy_and_pickle(key: RoleKey) -> None:
    for again in (copy.copy(key), copy.deepcopy(key),
                  *(pickle.loads(pickle.dumps(key, protocol=p))
                    for p in range(2, pickle.HIGHEST_PROTOCOL + 1))):
        assert type(again) is RoleKey and again == key
        assert (again.kind, again.name) == (key.kind, key.name)
