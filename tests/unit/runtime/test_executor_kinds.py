"""Every action of the core↔runtime contract (`core/actions.py`'s ``Action``) is one the
executor performs: an action added to the contract but not to the executor's table
would raise "unknown action" only when a real move produced it."""

from __future__ import annotations

import typing

from controller.core import actions
from controller.runtime import executor


def test_every_action_of_the_contract_is_performed_by_the_executor() -> None:
    contract = set(typing.get_args(actions.Action))
    assert contract, "core/actions.Action lists no action"
    missing = sorted(k.__name__ for k in contract if executor._kind_of(k) is None)
    assert missing == [], f"actions the executor does not perform: {missing}"
