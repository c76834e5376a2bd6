"""Issue 15: the executor's commits are grouped: every walk that reaches a visible
action in the same turn of the event loop waits for one transaction, written before
any of them goes on."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.adapters.state import StateStore
from controller.core import persist
from controller.runtime.persistence import Persistence


class Role:
    def __init__(self) -> None:
        self.changes = persist.Changes()
        self.data: dict[str, dict[str, Any]] = {}

    def set(self, key: str, value: int) -> None:
        self.data[key] = {"v": value}
        self.changes.note(key)

    def export_state(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def restore_state(self, key: str, data: dict[str, Any]) -> None:
        self.data[key] = data


def test_walks_of_one_turn_share_one_transaction(tmp_path) -> None:
    state = StateStore(str(tmp_path / "state.db"))
    role = Role()
    p = Persistence(state, {"fa:fa1": role}, {})
    p.restore()
    seen: list[int] = []

    async def walk(key: str) -> None:
        role.set(key, 1)                      # the role decided
        await p.commit()                      # what executor.execute awaits
        seen.append(state.count())            # ... before anyone hears of it

    async def main() -> None:
        await asyncio.gather(*(walk(f"user{i}") for i in range(5)))
        role.set("late", 2)
        await p.commit()

    asyncio.run(main())
    assert state.commits == 2                 # five walks, one transaction; then one
    assert seen == [5] * 5
    assert set(state.load()["fa:fa1"]) == {"user0", "user1", "user2", "user3", "user4",
                                           "late"}
    state.close()


def test_a_cancelled_walk_does_not_cancel_the_others_commit(tmp_path) -> None:
    state = StateStore(str(tmp_path / "state.db"))
    role = Role()
    p = Persistence(state, {"fa:fa1": role}, {})
    p.restore()

    async def main() -> None:
        role.set("a", 1)
        first = asyncio.ensure_future(p.commit())
        second = asyncio.ensure_future(p.commit())
        await asyncio.sleep(0)
        first.cancel()
        await second
        assert first.cancelled()

    asyncio.run(main())
    assert state.commits == 1 and "a" in state.load()["fa:fa1"]
    state.close()


def test_the_executor_performs_a_subclass_of_an_action_as_that_action(tmp_path) -> None:
    """Issue 15: the executor tells actions apart by their class (identity, not an
    ``isinstance`` per branch); a subclass of an action is still performed as it (its
    state persisted first when visible), and a non-action is still refused."""
    import pytest

    from controller.core.actions import ReplyMip
    from controller.runtime import executor as ex

    class MyReply(ReplyMip):
        pass

    state = StateStore(str(tmp_path / "state.db"))
    role = Role()
    p = Persistence(state, {"fa:fa1": role}, {})
    p.restore()
    run = ex.Executor.__new__(ex.Executor)
    run.persistence = p
    run.dispatch = None  # type: ignore[assignment]
    role.set("u", 1)
    assert asyncio.run(run.execute("fa:fa1", [MyReply(b"raw")])) == b"raw"
    assert state.commits == 1                 # persisted before the (visible) reply
    with pytest.raises(TypeError):
        asyncio.run(run.execute("fa:fa1", [object()]))
    assert ex._kind_of(MyReply) is ReplyMip and ex._kind_of(int) is None
    state.close()
