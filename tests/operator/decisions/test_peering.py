"""Whether a replica works or stands by: Kopf's peering rule and the two safeguards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmpool.operator.decisions.peering import (
    JobListing,
    Listed,
    Peer,
    Standing,
    behind,
    combined,
    ghosts,
    older,
    peers_of,
    same_or_newer,
    standing,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def peer(name: str, priority: int, *, seen_ago: float = 1.0, lifetime: int = 60) -> Peer:
    return Peer(name, priority, NOW - timedelta(seconds=seen_ago) + timedelta(seconds=lifetime))


def test_alone_and_announced_it_works() -> None:
    assert standing("a", 5, [peer("a", 5)], NOW) == Standing(True)


def test_not_announced_yet_it_waits_so_that_its_peers_see_it_first() -> None:
    verdict = standing("a", 5, [], NOW)
    assert not verdict.active and verdict.blockers == ()
    # an expired own entry is no announcement either
    assert not standing("a", 5, [peer("a", 5, seen_ago=61)], NOW).active


def test_a_live_higher_peer_makes_it_stand_by_until_that_heartbeat_expires() -> None:
    verdict = standing("a", 5, [peer("a", 5), peer("b", 9, seen_ago=20)], NOW)
    assert not verdict.active
    assert verdict.blockers == ("b",)


def test_an_equal_peer_pauses_both_as_kopf_does() -> None:
    peers = [peer("a", 5), peer("b", 5)]
    assert not standing("a", 5, peers, NOW).active
    assert not standing("b", 5, peers, NOW).active


def test_a_dead_higher_peer_no_longer_counts() -> None:
    verdict = standing("a", 5, [peer("a", 5), peer("b", 9, seen_ago=61)], NOW)
    assert verdict.active and not verdict.handover


def test_joining_above_live_lower_peers_is_a_handover() -> None:
    verdict = standing("b", 9, [peer("a", 5), peer("b", 9)], NOW)
    assert verdict.active and verdict.handover
    # and the lower one stands by for it
    assert not standing("a", 5, [peer("a", 5), peer("b", 9)], NOW).active


def test_peers_of_reads_kopf_entries_and_skips_garbage() -> None:
    status = {
        "a": {"priority": 3, "lifetime": 10, "lastseen": "2026-12-04T11:59:58+00:00"},
        "b": {"priority": 1},  # Kopf's defaults: lifetime 60, last seen now
        "c": "not an entry",
        "d": {"priority": "high"},
        "e": {"lastseen": 12},
        "f": {"lifetime": "x"},
        7: {"priority": 1},
    }
    found = {p.identity: p for p in peers_of(status, now=NOW)}
    assert set(found) == {"a", "b", "e"}
    assert found["a"] == Peer("a", 3, NOW + timedelta(seconds=8))
    assert found["b"] == Peer("b", 1, NOW + timedelta(seconds=60))
    assert found["e"].deadline == NOW + timedelta(seconds=60)  # an unreadable time: now
    assert peers_of(None, now=NOW) == [] and peers_of(["a"], now=NOW) == []


def test_combined_works_only_when_every_object_says_so() -> None:
    working, blocked = Standing(True, handover=True), Standing(False, ("b",))
    assert combined([]) == Standing(True)
    assert combined([working, working]).active
    both = combined([working, blocked])
    assert not both.active and both.blockers == ("b",)
    assert both.handover


@pytest.mark.parametrize("me", [0, 1, 2])
def test_of_three_live_replicas_exactly_the_highest_works(me: int) -> None:
    peers = [peer(f"r{i}", 10 * i) for i in range(3)]
    assert standing(f"r{me}", 10 * me, peers, NOW).active == (me == 2)


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 120)), min_size=1, max_size=6))
def test_at_most_one_replica_works_whatever_the_object_says(
    entries: list[tuple[int, float]],
) -> None:
    peers = [peer(f"r{i}", prio, seen_ago=ago) for i, (prio, ago) in enumerate(entries)]
    working = [p for p in peers if standing(p.identity, p.priority, peers, NOW).active]
    assert len(working) <= 1
    live = [p for p in peers if p.deadline > NOW]
    top = [p for p in live if p.priority == max((q.priority for q in live), default=-1)]
    if len(top) == 1:  # a single live replica of the highest priority: it is the one
        assert working == top


# ---------------------------------------------------------------- catching up on resuming


def listing(version: str, **jobs: tuple[str, bool]) -> JobListing:
    return JobListing(version, {uid: Listed(v, terminal) for uid, (v, terminal) in jobs.items()})


def test_an_index_that_holds_every_live_job_at_its_listed_version_is_caught_up() -> None:
    listed = listing("100", a=("90", False), b=("95", True))
    assert behind(listed, {"a": "90"}) == set()
    assert behind(listed, {"a": "97"}) == set()  # changed since the listing: newer is fine


def test_a_live_job_missing_or_older_in_the_index_is_behind() -> None:
    listed = listing("100", a=("90", False), b=("99", False))
    assert behind(listed, {"b": "99"}) == {"a"}
    assert behind(listed, {"a": "80", "b": "99"}) == {"a"}


def test_a_job_the_peer_finished_still_queued_in_the_index_is_behind() -> None:
    """The dangerous case: placed again from the index, it would run twice."""
    listed = listing("100", a=("96", True))
    assert behind(listed, {"a": "40"}) == {"a"}
    assert behind(listed, {}) == set()


def test_ghosts_are_jobs_deleted_before_the_listing() -> None:
    listed = listing("100", a=("90", False))
    indexed = {"a": "90", "gone": "50", "new": "101"}
    assert ghosts(listed, indexed) == {"gone"}


@pytest.mark.parametrize(
    ("version", "than", "newer", "older_"),
    [("5", "5", True, False), ("6", "5", True, False), ("4", "5", False, True),
     ("10", "9", True, False), ("abc", "abc", True, False), ("abc", "abd", False, False),
     ("", "5", False, False)],
)  # fmt: skip
def test_versions_compare_as_integers_else_only_by_equality(
    version: str, than: str, newer: bool, older_: bool
) -> None:
    assert same_or_newer(version, than) is newer
    assert older(version, than) is older_
    # an opaque version never makes a ghost: a job is not left out on a guess
    assert ghosts(listing("x-1"), {"j": "x-0"}) == set()
