"""The one health rule, on plain facts: each fact alone, and which one wins; and counts in words."""

from __future__ import annotations

from dataclasses import replace

import pytest

from portal.project.statuses import HEALTH_LEVELS, LISTED_LIFECYCLES, Health, nodes_failed, plural

GOOD = Health(lifecycle="published", build_status="success", tests_passed=3, freshness="fresh", promised=True)


@pytest.mark.parametrize(
    ("changes", "level", "problem"),
    [
        ({}, "healthy", None),
        ({"lifecycle": "failed"}, "failing", "not published: its last audit failed"),
        ({"build_status": "error"}, "failing", "last build error"),
        ({"tests_failed": 2}, "failing", "2 failing tests"),
        ({"profile_status": "missing"}, "failing", "profile: the table does not exist in the warehouse"),
        ({"freshness": "stale"}, "stale", "stale"),
        ({"freshness": "late"}, "warning", "late"),
        ({"open_drift": 1}, "warning", "1 open drift event"),
        ({"tests_warned": 1}, "warning", "1 warning test"),
        ({"duplicate_keys": 1200}, "warning", "1,200 duplicate primary keys"),
        ({"profile_status": "empty"}, "warning", "empty"),
        ({"build_status": None}, "unknown", None),  # never built where consumers read it
        ({"build_status": "skipped"}, "unknown", None),
        ({"freshness": "unknown"}, "unknown", None),  # promised, but not measurable
        ({"freshness": "unknown", "promised": False}, "healthy", None),  # nothing promised
        ({"lifecycle": "deprecated"}, "healthy", None),  # still read, still judged
    ],
)
def test_each_fact_alone(changes: dict[str, object], level: str, problem: str | None) -> None:
    health = replace(GOOD, **changes)  # type: ignore[arg-type]
    assert health.level == level
    assert health.problems == ([problem] if problem else [])


def test_the_worst_fact_wins_and_problems_come_worst_first() -> None:
    health = replace(GOOD, lifecycle="failed", freshness="stale", tests_warned=1, tests_failed=1)
    assert health.level == "failing"
    assert health.problems == [
        "not published: its last audit failed",
        "1 failing test",
        "stale",
        "1 warning test",
    ]
    assert replace(GOOD, freshness="stale", open_drift=3).level == "stale"
    assert replace(GOOD, freshness="late", build_status=None).level == "warning"


def test_rank_sorts_worst_first_then_by_how_much_is_wrong() -> None:
    levels = [replace(GOOD, **changes) for changes in ({}, {"freshness": "stale"}, {"build_status": "error"})]  # type: ignore[arg-type]
    assert [h.level for h in sorted(levels, key=lambda h: h.rank)] == ["failing", "stale", "healthy"]
    one, two = replace(GOOD, tests_failed=1), replace(GOOD, tests_failed=1, open_drift=1)
    assert sorted([one, two], key=lambda h: h.rank) == [two, one]


def test_a_plain_model_with_a_good_build_is_healthy() -> None:
    assert Health(build_status="success").level == "healthy"  # built-in: no promise, no profile
    assert Health().level == "unknown"


def test_the_vocabularies_do_not_overlap() -> None:
    # "failed" is a lifecycle and "failing" a health level: a value names one filter only
    assert set(LISTED_LIFECYCLES).isdisjoint(HEALTH_LEVELS)
    assert "removed" not in LISTED_LIFECYCLES


def test_counts_read_as_words_not_as_word_s() -> None:
    assert plural(1, "data product") == "1 data product"
    assert plural(0, "duplicate") == "0 duplicates"
    assert plural(12_345, "node") == "12,345 nodes"
    failed = [f"model.shop.m{i}" for i in range(7)]
    assert nodes_failed(failed[:1]) == "1 node failed: model.shop.m0"
    # the first five are named: a message, not a list of thousands
    assert nodes_failed(failed) == "7 nodes failed: " + ", ".join(failed[:5])
