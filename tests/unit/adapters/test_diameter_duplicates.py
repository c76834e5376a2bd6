"""RFC 6733 §5.5.4 duplicate detection: the answers kept for retransmissions are
bounded per sending peer (one peer's requests never evict another's), overall, and by
age (a duplicate comes within the sender's failover window; an End-to-End id is unique
for 4 minutes only): ``controller.adapters.diameter_dup``."""

from __future__ import annotations

from dataclasses import replace

from controller.adapters import diameter_dup
from controller.adapters.diameter_dup import AnswerCache
from controller.adapters.diameter_peer import DiameterNode
from controller.proto.diameter import encode
from tests.unit.adapters.test_diameter_failover import Home
from tests.unit.proto.test_diameter_codec import AMR
from tests.unit.proto.test_diameter_relay_avps import PI_1
from tests.unit.proto.test_diameter_errors import HOST, run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(peer: str, e2e: int) -> diameter_dup.Key:
    return (peer, peer, e2e, "AmRequest", f"s;{e2e}")


def test_one_peer_evicts_only_its_own_entries() -> None:
    cache = AnswerCache(per_peer=8, total=100, clock=Clock())
    cache.put(key("fa1", 1), "a1")
    for e2e in range(1000):                         # a flood from one peer
        cache.put(key("fa9", e2e), e2e)
    assert cache.get(key("fa1", 1)) == "a1"
    assert cache.peer_count("fa9") == 8 and len(cache) == 9
    assert cache.get(key("fa9", 991)) is None and cache.get(key("fa9", 999)) == 999


def test_overall_bound_takes_the_oldest_of_any_peer() -> None:
    cache = AnswerCache(per_peer=8, total=10, clock=Clock())
    for e2e in range(6):
        cache.put(key("fa1", e2e), e2e)
        cache.put(key("fa2", e2e), e2e)
    assert len(cache) == 10
    assert cache.get(key("fa1", 0)) is None and cache.get(key("fa2", 0)) is None
    assert cache.get(key("fa1", 5)) == 5 and cache.get(key("fa2", 1)) == 1
    assert cache.peer_count("fa1") + cache.peer_count("fa2") == 10


def test_entries_age_out() -> None:
    clock = Clock()
    cache = AnswerCache(per_peer=8, total=10, max_age=120.0, clock=clock)
    cache.put(key("fa1", 1), "old")
    clock.now += 100
    cache.put(key("fa2", 2), "newer")
    clock.now += 20.5
    assert cache.get(key("fa1", 1)) is None         # 120.5 s old
    assert cache.get(key("fa2", 2)) == "newer"
    assert len(cache) == 1 and cache.peer_count("fa1") == 0   # memory freed too
    # a re-put refreshes the entry's age
    clock.now += 90
    cache.put(key("fa2", 2), "again")
    clock.now += 90
    assert cache.get(key("fa2", 2)) == "again"


def test_the_window_is_within_the_rfc_bounds() -> None:
    tw = tc = 30.0                      # RFC 3539 Tw, RFC 6733 §2.1 Tc (recommended)
    assert 2 * tw + 2 + tc <= diameter_dup.ANSWERS_MAX_AGE < 240.0   # §3: 4 minutes
    assert diameter_dup.ANSWERS_KEPT_PER_PEER < diameter_dup.ANSWERS_KEPT


def test_a_flooding_peer_does_not_take_another_peers_duplicate() -> None:
    """On the wire: fa9's many requests leave fa1's answer; fa1's retransmission is
    answered from it, not processed again."""
    async def main() -> None:
        home = Home(drop=0)
        home.node.answers = AnswerCache(per_peer=4, total=16)
        port = await home.node.listen(HOST, 0)
        fa1 = DiameterNode("fa1.foreign.example", "foreign.example")
        fa9 = DiameterNode("fa9.foreign.example", "foreign.example")
        conn1 = await fa1.connect(HOST, port)
        conn9 = await fa9.connect(HOST, port)
        await fa1.request(AMR, peer=conn1)
        e2e = home.seen[0][1]
        for _ in range(20):
            await conn9.request(AMR, 2.0, ids=(fa9.next_hop_by_hop(), fa9.next_end_to_end()))
        assert home.calls == 21
        await conn1.request(AMR, 2.0, ids=(fa1.next_hop_by_hop(), e2e), retransmit=True)
        assert home.calls == 21 and home.node.counters["duplicate_answered"] == 1
        assert home.node.answers.peer_count("fa9.foreign.example") == 4
        for node in (fa1, fa9, home.node):
            await node.close()
    run(main())


def test_an_old_answer_is_not_given_to_a_late_retransmission() -> None:
    async def main() -> None:
        clock = Clock()
        home = Home(drop=0)
        home.node.answers = AnswerCache(clock=clock)
        port = await home.node.listen(HOST, 0)
        fa1 = DiameterNode("fa1.foreign.example", "foreign.example")
        conn1 = await fa1.connect(HOST, port)
        await fa1.request(AMR, peer=conn1)
        e2e = home.seen[0][1]
        clock.now += diameter_dup.ANSWERS_MAX_AGE + 1
        await conn1.request(AMR, 2.0, ids=(fa1.next_hop_by_hop(), e2e), retransmit=True)
        assert home.calls == 2 and home.node.counters["duplicate_answered"] == 0
        for node in (fa1, home.node):
            await node.close()
    run(main())


def test_an_answered_entry_keeps_its_bytes_not_its_message_objects() -> None:
    """Issue 15: an answer kept for duplicates for 120 s is the bytes sent, not the
    answer's objects (a future, the message, its VPN information): each renewal left
    about ten such objects that the cyclic GC traversed twice before they died.  The
    duplicate's answer stays byte-identical to the first but for its Hop-by-Hop id;
    a duplicate carrying Proxy-Info gets its own echoed (RFC 6733 §6.2)."""
    async def main() -> None:
        home = Home(drop=0)
        port = await home.node.listen(HOST, 0)
        fa1 = DiameterNode("fa1.foreign.example", "foreign.example")
        conn1 = await fa1.connect(HOST, port)
        first = await fa1.request(AMR, peer=conn1)
        e2e = home.seen[0][1]
        kept = [v for _k, (_t, v) in home.node.answers._all.items()]
        assert len(kept) == 1 and isinstance(kept[0], bytes)
        assert kept[0] == encode(first, ids=(first.hop_by_hop, e2e))
        hop = fa1.next_hop_by_hop()
        again = await conn1.request(AMR, 2.0, ids=(hop, e2e), retransmit=True)
        assert home.calls == 1 and home.node.counters["duplicate_answered"] == 1
        assert encode(again, ids=(hop, e2e)) == kept[0][:12] + hop.to_bytes(4, "big") + kept[0][16:]
        assert again.hop_by_hop == hop and again.end_to_end == e2e
        proxied = replace(AMR, proxy_info=(PI_1,))
        third = await conn1.request(proxied, 2.0, ids=(fa1.next_hop_by_hop(), e2e),
                                    retransmit=True)
        assert home.calls == 1 and home.node.counters["duplicate_answered"] == 2
        assert third.proxy_info == proxied.proxy_info and third.vpn_info == first.vpn_info
        for node in (fa1, home.node):
            await node.close()
    run(main())
