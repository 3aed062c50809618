"""The portal's one vocabulary: what dbt's node statuses mean, a product's lifecycle, and the
health rule that turns a product's facts into one word.

Every face shows health through `Health.level` and `Health.problems` here: the catalog badge,
the Health page, the product page, the API and the CLI. Before this module the catalog and
the Health page each had a rule of their own, so one product read "healthy" in one place and
"stale" in the other; lifecycle (is it published?) and health (is it good?) were also mixed in
one "status". They are two questions with two vocabularies:

- **lifecycle** is where a product is in its life: draft, building, in_review (its audit passed
  and a reviewer decides, PORTAL_REVIEW), published, failed (its audit did not pass, so it was
  never published), rejected (a reviewer refused it before it was ever published), deprecated,
  removed; plain dbt models that the portal does not manage are "built-in";
- **health** is how much a consumer can trust what is published now: failing, stale, warning,
  unknown or healthy, worst first.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog_db.models import PRODUCT_STATUSES, PROFILE_STATUSES

# --- dbt's node statuses (run_results.json) ------------------------------------------------

BUILD_OK = frozenset({"success", "pass"})
TEST_WARNED = "warn"
BUILD_FAILED = frozenset({"error", "fail", "runtime error"})
# Neither ok nor failed: skipped, no-op. They say nothing about the data.

# --- lifecycle -----------------------------------------------------------------------------

LIFECYCLE_STATES = PRODUCT_STATUSES  # draft, building, in_review, published, failed, rejected, ...
BUILT_IN = "built-in"  # a plain dbt model: in the manifest, not registered as a product
LISTED_LIFECYCLES = (*(s for s in LIFECYCLE_STATES if s != "removed"), BUILT_IN)
LIVE_LIFECYCLES = ("published", "deprecated")  # what consumers read, and refreshes rebuild
# Portal products that have not passed write-audit-publish: never refreshed into gold.
UNPUBLISHED_LIFECYCLES = ("draft", "building", "in_review", "failed", "rejected", "removed")

# --- freshness against the promised update frequency ---------------------------------------

FRESHNESS_STATES = ("fresh", "late", "stale", "unknown")

# --- profiles --------------------------------------------------------------------------------

PROFILE_STATUS_TEXT = {
    "ok": "measured",
    "empty": "the table is empty",
    "missing": "the table does not exist in the warehouse",
    "unavailable": "the warehouse could not be reached",
    "error": "the warehouse refused the profile query",
}
assert set(PROFILE_STATUS_TEXT) == set(PROFILE_STATUSES)
PROFILE_FAILED = frozenset({"missing", "unavailable", "error"})

# --- health ----------------------------------------------------------------------------------

HEALTH_LEVELS = ("failing", "stale", "warning", "unknown", "healthy")  # worst first


def plural(count: int, word: str) -> str:
    """`1 data product`, `2 data products`: every face counts things in the same words."""
    return f"{count:,} {word}{'s' * (count != 1)}"


def nodes_failed(unique_ids: list[str]) -> str:
    """A failed build's one-line message: how many nodes failed and the first few of them."""
    return f"{plural(len(unique_ids), 'node')} failed: {', '.join(unique_ids[:5])}"


@dataclass(frozen=True)
class Health:
    """The facts health is judged on, and the one rule that judges them.

    Facts a caller could not know stay at their defaults (a plain model has no freshness
    promise, no profile): an absent fact is never a problem, only a missing build is.
    """

    lifecycle: str = BUILT_IN
    build_status: str | None = None  # the model's newest result where consumers read it
    tests_passed: int = 0
    tests_failed: int = 0
    tests_warned: int = 0
    freshness: str = "unknown"  # one of FRESHNESS_STATES
    promised: bool = False  # an update frequency the freshness is checked against
    profile_status: str | None = None  # the newest profile's, one of PROFILE_STATUSES
    duplicate_keys: int | None = None
    open_drift: int = 0

    @property
    def problems(self) -> list[str]:
        """What is wrong, worst first, in words; empty when healthy or merely unknown."""
        found = []
        if self.lifecycle == "failed":
            found.append("not published: its last audit failed")
        if self.lifecycle == "in_review":
            found.append("not published yet: its audit passed and it waits for a reviewer")
        if self.lifecycle == "rejected":
            found.append("not published: a reviewer rejected it (see its proposal)")
        if self.build_status in BUILD_FAILED:
            found.append(f"last build {self.build_status}")
        if self.tests_failed:
            found.append(plural(self.tests_failed, "failing test"))
        if self.profile_status in PROFILE_FAILED:
            found.append(f"profile: {PROFILE_STATUS_TEXT[self.profile_status]}")
        if self.freshness in {"stale", "late"}:
            found.append(self.freshness)
        if self.duplicate_keys:
            found.append(f"{plural(self.duplicate_keys, 'duplicate primary key')}")
        if self.open_drift:
            found.append(plural(self.open_drift, "open drift event"))
        if self.tests_warned:
            found.append(plural(self.tests_warned, "warning test"))
        if self.profile_status == "empty":
            found.append("empty")
        return found

    @property
    def level(self) -> str:
        """One of HEALTH_LEVELS.

        failing: it was not published, its build or a test failed, or its table cannot be read;
        stale: far past its promised update frequency; warning: late, drifting, warned,
        duplicate keys or empty; unknown: no good build yet, or freshness promised but not
        measurable; healthy otherwise.
        """
        if (
            self.lifecycle == "failed"
            or self.build_status in BUILD_FAILED
            or self.tests_failed
            or self.profile_status in PROFILE_FAILED
        ):
            return "failing"
        if self.freshness == "stale":
            return "stale"
        if (
            self.freshness == "late"
            or self.open_drift
            or self.tests_warned
            or self.duplicate_keys
            or self.profile_status == "empty"
        ):
            return "warning"
        if self.build_status not in BUILD_OK or (self.promised and self.freshness == "unknown"):
            return "unknown"
        return "healthy"

    @property
    def rank(self) -> tuple[int, int]:
        """For sorting worst first: by level, then by how many things are wrong."""
        return (HEALTH_LEVELS.index(self.level), -len(self.problems))


__all__ = [
    "BUILD_FAILED",
    "BUILD_OK",
    "BUILT_IN",
    "FRESHNESS_STATES",
    "HEALTH_LEVELS",
    "LIFECYCLE_STATES",
    "LISTED_LIFECYCLES",
    "LIVE_LIFECYCLES",
    "PROFILE_FAILED",
    "PROFILE_STATUS_TEXT",
    "TEST_WARNED",
    "UNPUBLISHED_LIFECYCLES",
    "Health",
    "plural",
]
