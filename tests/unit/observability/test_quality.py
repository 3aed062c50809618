"""Profiles, freshness and drift: exact numbers on small real DuckDB tables, and the boundaries."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from portal.errors import NotFound
from portal.observability import profiler
from portal.observability.drift import (
    DriftThresholds,
    acknowledge_drift,
    detect_drift,
    drift_events,
    population_stability_index,
)
from portal.observability.freshness import (
    Freshness,
    assess_freshness,
    frequency_period,
    freshness,
    freshness_state,
    source_state,
)
from portal.observability.health import health_overview, open_drift_counts
from portal.observability.history import (
    _from_row,
    _profile_row,
    latest_profile,
    profile_history,
    profile_product,
    profile_products,
)
from portal.observability.profile import ColumnProfile, Profile, SourceAge, column_kind, primary_key
from portal.service import PortalService
from portal.settings import Settings
from portal.warehouse import Relation
from portal.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import copy_demo


class CountingWarehouse(DuckDBWarehouse):
    """The real DuckDB warehouse, counting the statements it runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, timeout_s=10, max_rows=1000)
        self.statements: list[str] = []

    def _fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.statements.append(sql)
        return super()._fetch(sql)


def make_warehouse(path: Path, *statements: str) -> CountingWarehouse:
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists gold")
    for statement in statements:
        con.execute(statement)
    con.close()
    return CountingWarehouse(path)


KNOWN = """
create table gold.known as select * from (values
    (1, 'a', 10.00::decimal(10,2), 1.0::double, true,  timestamp '2026-01-01 10:00', date '2026-01-01', [1],  null, 'w', map {'k': 1}),
    (2, 'a', 20.00::decimal(10,2), 2.0::double, false, timestamp '2026-01-02 10:00', date '2026-01-02', [2],  'x',  'x', map {'k': 2}),
    (3, 'b', null,                 3.0::double, true,  timestamp '2026-01-03 10:00', null,              null, null, 'y', null),
    (3, 'c', 30.00::decimal(10,2), null,        null,  null,                         date '2026-01-03', [3],  null, 'z', map {'k': 3})
) as t(id, grp, amount, score, flag, "at", day, tags, note, name, attrs)
"""  # fmt: skip


@pytest.fixture
def known(tmp_path: Path) -> CountingWarehouse:
    return make_warehouse(tmp_path / "w.duckdb", KNOWN)


def measure(warehouse: DuckDBWarehouse, table: str = "known", **kwargs: Any) -> Profile:
    kwargs.setdefault("max_categories", 3)
    return profiler.measure(warehouse, Relation(None, "gold", table), product=table, **kwargs)


def test_profile_of_a_known_table_has_exact_numbers(known: CountingWarehouse) -> None:
    profile = measure(known, primary_key=("id",), freshness_column="at")
    assert profile.status == "ok"
    assert profile.message is None
    assert profile.row_count == 4
    assert profile.primary_key == ("id",)
    assert profile.duplicate_keys == 1  # id 3 twice
    assert profile.newest_update == datetime(2026, 1, 3, 10, tzinfo=UTC)
    col = {c.name: c for c in profile.columns}
    assert list(col) == ["id", "grp", "amount", "score", "flag", "at", "day", "tags", "note", "name", "attrs"]

    assert (col["id"].kind, col["id"].nulls, col["id"].null_rate, col["id"].distinct) == (
        "numeric",
        0,
        0.0,
        3,
    )
    assert (col["id"].minimum, col["id"].maximum, col["id"].mean) == (1, 3, 2.25)
    assert col["id"].stddev == pytest.approx(statistics.stdev([1, 2, 3, 3]), abs=1e-12)
    assert col["id"].values == (("3", 2), ("1", 1), ("2", 1))

    amount = col["amount"]
    assert (amount.nulls, amount.null_rate, amount.distinct) == (1, 0.25, 3)
    assert (amount.minimum, amount.maximum, amount.mean, amount.stddev) == (10.0, 30.0, 20.0, 10.0)

    score = col["score"]
    assert (score.nulls, score.mean, score.stddev) == (1, 2.0, 1.0)
    assert score.values == (("1.0", 1), ("2.0", 1), ("3.0", 1), (None, 1))

    assert col["grp"].kind == "string"
    assert col["grp"].values == (("a", 2), ("b", 1), ("c", 1))
    assert col["flag"].kind == "boolean"
    assert (col["flag"].nulls, col["flag"].distinct) == (1, 2)
    assert col["flag"].values == (("true", 2), ("false", 1), (None, 1))
    assert (col["at"].kind, col["at"].minimum, col["at"].maximum) == (
        "temporal",
        "2026-01-01T10:00:00+00:00",
        "2026-01-03T10:00:00+00:00",
    )
    assert (col["day"].nulls, col["day"].distinct, col["day"].minimum, col["day"].maximum) == (
        1,
        3,
        "2026-01-01",
        "2026-01-03",
    )
    assert (col["note"].nulls, col["note"].null_rate, col["note"].distinct) == (3, 0.75, 1)
    assert col["note"].values == ((None, 3), ("x", 1))
    assert col["name"].distinct == 4 and col["name"].values is None  # over max_categories

    # Types the profiler does not know (lists, maps): null counts only, and no failure.
    for other in ("tags", "attrs"):
        assert col[other].kind == "other"
        assert (col[other].nulls, col[other].distinct, col[other].values) == (1, None, None)


def test_a_profile_is_two_statements_whatever_the_width(known: CountingWarehouse) -> None:
    measure(known, primary_key=("id",))
    assert len(known.statements) == 2  # the aggregate over every column, then the value counts
    assert "GROUPING SETS" in known.statements[1]


def test_composite_primary_key_and_a_missing_key_column(known: CountingWarehouse) -> None:
    assert measure(known, primary_key=("id", "grp")).duplicate_keys == 0
    profile = measure(known, primary_key=("id", "nope"))
    assert profile.status == "ok"
    assert profile.duplicate_keys is None
    assert "nope" in (profile.message or "") and "meta.primary_key" in (profile.message or "")


def test_profiles_survive_the_catalog_database_round_trip(known: CountingWarehouse) -> None:
    profile = measure(known, primary_key=("id",), freshness_column="at")
    assert _from_row(_profile_row(profile)) == profile


def test_empty_table_is_a_clear_state(tmp_path: Path) -> None:
    warehouse = make_warehouse(
        tmp_path / "w.duckdb", 'create table gold.empty (id bigint, label varchar, "at" timestamp)'
    )
    profile = measure(warehouse, "empty", primary_key=("id",), freshness_column="at")
    assert profile.status == "empty"
    assert profile.row_count == 0
    assert "has no rows" in (profile.message or "")
    assert [c.name for c in profile.columns] == ["id", "label", "at"]
    assert all(c.null_rate is None and c.nulls == 0 for c in profile.columns)
    assert profile.duplicate_keys == 0
    assert profile.newest_update is None
    assert len(warehouse.statements) == 1  # no value counts of nothing


def test_missing_table_is_a_clear_state(known: CountingWarehouse) -> None:
    profile = measure(known, "not_built")
    assert profile.status == "missing"
    assert "dbt build --select not_built" in (profile.message or "")


def test_warehouse_that_is_down_is_a_clear_state(tmp_path: Path) -> None:
    profile = measure(DuckDBWarehouse(tmp_path / "never-built.duckdb", timeout_s=5, max_rows=10))
    assert profile.status == "unavailable"
    assert "make demo" in (profile.message or "")
    assert profile.columns == ()


@pytest.mark.parametrize(
    ("type_name", "kind"),
    [
        ("BIGINT", "numeric"),
        ("DECIMAL(18,2)", "numeric"),
        ("double precision", "numeric"),
        ("timestamp(6) with time zone", "temporal"),
        ("TIMESTAMP", "temporal"),
        ("date", "temporal"),
        ("BOOLEAN", "boolean"),
        ("varchar(20)", "string"),
        ("UUID", "string"),
        ("INTEGER[]", "other"),
        ("STRUCT(a INTEGER)", "other"),
        ("map(varchar, integer)", "other"),
        ("array(bigint)", "other"),
        ("row(a integer)", "other"),
        ("INTERVAL", "other"),
        ("BLOB", "other"),
        ("", "other"),
    ],
)
def test_column_kinds(type_name: str, kind: str) -> None:
    assert column_kind(type_name) == kind


# --- drift ---------------------------------------------------------------------------------

BUILD_1 = """
create table gold.p as
select i as id, ['a', 'b', 'c', 'd'][i % 4 + 1] as cat, (i * 1.5)::decimal(10,2) as amount,
       case when i % 10 = 0 then null else 'n' || (i % 5) end as note
from range(1, 101) r(i)
"""
# One column added, one retyped, one whose null rate jumps from 10 % to 50 %; the rest unchanged.
BUILD_2 = """
create table gold.p as
select i as id, ['a', 'b', 'c', 'd'][i % 4 + 1] as cat, (i * 1.5)::double as amount,
       case when i % 2 = 1 then null else 'n' || (i % 5) end as note, i % 3 as added
from range(1, 101) r(i)
"""


def test_drift_between_two_builds(tmp_path: Path) -> None:
    first = measure(make_warehouse(tmp_path / "1.duckdb", BUILD_1), "p", max_categories=20)
    second = measure(make_warehouse(tmp_path / "2.duckdb", BUILD_2), "p", max_categories=20)
    drift = detect_drift(first, second, DriftThresholds())
    assert {(d.kind, d.change, d.column) for d in drift} == {
        ("schema", "added", "added"),
        ("schema", "retyped", "amount"),
        ("distribution", "null_rate", "note"),
    }
    by_change = {d.change: d for d in drift}
    assert by_change["retyped"].detail == {"from": "DECIMAL(10,2)", "to": "DOUBLE"}
    null_rate = by_change["null_rate"].detail
    assert (null_rate["from"], null_rate["to"]) == (0.1, 0.5)
    assert null_rate["delta"] == pytest.approx(0.4)
    assert by_change["null_rate"].description == "Null rate of note moved from 10.0% to 50.0%."
    assert by_change["retyped"].description == "Column amount changed type from DECIMAL(10,2) to DOUBLE."

    backwards = detect_drift(second, first, DriftThresholds())
    assert ("schema", "removed", "added") in {(d.kind, d.change, d.column) for d in backwards}
    assert detect_drift(first, first, DriftThresholds()) == []


def column(**kwargs: Any) -> ColumnProfile:
    return ColumnProfile(**{"name": "c", "type": "DOUBLE", "kind": "numeric", **kwargs})


def profile_of(*columns: ColumnProfile, status: str = "ok") -> Profile:
    return Profile("p", status, datetime(2026, 1, 1, tzinfo=UTC), row_count=100, columns=columns)


def changes(before: ColumnProfile, after: ColumnProfile) -> set[str]:
    return {d.change for d in detect_drift(profile_of(before), profile_of(after), DriftThresholds())}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"null_rate": 0.1}, {"null_rate": 0.2}, {"null_rate"}),  # exactly the threshold counts
        ({"null_rate": 0.1}, {"null_rate": 0.199}, set()),
        ({"null_rate": 0.3}, {"null_rate": 0.2}, {"null_rate"}),  # falling counts too
        ({"distinct": 100}, {"distinct": 150}, {"distinct_count"}),
        ({"distinct": 100}, {"distinct": 149}, set()),
        ({"distinct": 100}, {"distinct": 50}, {"distinct_count"}),
        ({"mean": 10.0, "stddev": 2.0}, {"mean": 11.0, "stddev": 2.0}, {"mean"}),  # 0.5 sd
        ({"mean": 10.0, "stddev": 2.0}, {"mean": 10.9, "stddev": 2.0}, set()),
        ({"mean": 5.0, "stddev": 0.0}, {"mean": 5.0, "stddev": 0.0}, set()),
        ({"mean": 5.0, "stddev": 0.0}, {"mean": 6.0, "stddev": 0.0}, {"mean"}),  # a constant moved
        ({"values": (("a", 50), ("b", 50))}, {"values": (("a", 90), ("b", 10))}, {"psi"}),
        ({"values": (("a", 50), ("b", 50))}, {"values": (("a", 52), ("b", 48), (None, 900))}, set()),
    ],
)
def test_distribution_thresholds(before: dict[str, Any], after: dict[str, Any], expected: set[str]) -> None:
    assert changes(column(**before), column(**after)) == expected


def test_an_empty_build_reports_schema_drift_but_no_distribution_drift() -> None:
    before = profile_of(column(null_rate=0.0), column(name="gone", null_rate=0.0))
    after = profile_of(column(null_rate=None), status="empty")
    assert [(d.change, d.column) for d in detect_drift(before, after, DriftThresholds())] == [
        ("removed", "gone")
    ]
    missing = Profile("p", "missing", datetime(2026, 1, 2, tzinfo=UTC))
    assert detect_drift(before, missing, DriftThresholds()) == []


def test_population_stability_index() -> None:
    psi = population_stability_index({"a": 50, "b": 50}, {"a": 90, "b": 10})
    assert psi == pytest.approx(0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5), abs=1e-12)
    assert psi == pytest.approx(0.878889831, abs=1e-9)
    assert population_stability_index({"a": 3, "b": 7}, {"a": 30, "b": 70}) == 0.0
    # A category on one side only: floored, so large but finite.
    new = population_stability_index({"a": 100}, {"a": 50, "b": 50})
    assert math.isfinite(new) and new > 2
    assert population_stability_index({}, {"a": 1}) == 0.0


# --- freshness -----------------------------------------------------------------------------

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (timedelta(0), "fresh"),
        (DAY, "fresh"),  # exactly one period old is still on time
        (DAY + TICK, "late"),
        (2 * DAY, "late"),
        (2 * DAY + TICK, "stale"),
        (None, "unknown"),
    ],
)
def test_freshness_states_at_the_boundaries(age: timedelta | None, state: str) -> None:
    assert freshness_state(age, DAY, 2.0) == state


def test_freshness_without_a_known_promise_is_unknown() -> None:
    assert freshness_state(timedelta(hours=1), None, 2.0) == "unknown"
    assert frequency_period("weekly") == 7 * DAY
    assert frequency_period("Monthly") == 31 * DAY
    assert frequency_period("fortnightly") is None


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (timedelta(hours=48), "fresh"),
        (timedelta(hours=48) + TICK, "late"),
        (timedelta(hours=96) + TICK, "stale"),
    ],
)
def test_source_freshness_follows_dbt(age: timedelta, state: str) -> None:
    assert source_state(age, timedelta(hours=48), timedelta(hours=96)) == state


NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def assess(**kwargs: Any) -> Freshness:
    values: dict[str, Any] = {
        "update_frequency": "daily",
        "newest_update": None,
        "profiled_at": None,
        "last_success": None,
        "freshness_column": "data_product_updated_at",
        "stale_factor": 2.0,
        "now": NOW,
    }
    return assess_freshness(**{**values, **kwargs})


def test_freshness_is_measured_on_the_newest_evidence() -> None:
    measured = assess(newest_update=NOW - 3 * DAY, profiled_at=NOW - 3 * DAY, last_success=NOW - 3 * DAY)
    assert (measured.state, measured.basis) == ("stale", "newest data_product_updated_at")
    assert "far past its daily promise" in measured.reason
    # Built again by plain dbt after the last profile: the build is the better evidence.
    rebuilt = assess(
        newest_update=NOW - 3 * DAY, profiled_at=NOW - 3 * DAY, last_success=NOW - timedelta(hours=2)
    )
    assert (rebuilt.state, rebuilt.basis) == ("fresh", "last successful build")
    never = assess()
    assert never.state == "unknown" and "refresh the product" in never.reason
    unpromised = assess(update_frequency=None, last_success=NOW - DAY)
    assert unpromised.state == "unknown" and "meta.update_frequency" in unpromised.reason
    odd = assess(update_frequency="fortnightly", last_success=NOW - DAY)
    assert odd.state == "unknown" and "hourly, daily, weekly, monthly" in odd.reason


# --- on the demo: what the project declares, and the stored time series ---------------------


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> Iterator[PortalService]:
    yield PortalService(Settings.from_env(copy_demo(demo_env, tmp_path)))


def test_primary_keys_come_from_the_models_tests(service: PortalService) -> None:
    manifest = service.artifacts().manifest
    keys = {
        name: primary_key(manifest, service.resolve(name))
        for name in ("dp_customer_360", "dp_product_performance", "dp_revenue_analytics")
    }
    assert keys == {
        "dp_customer_360": ("customer_id",),
        "dp_product_performance": ("product_id",),  # sku is unique too, but comes later
        "dp_revenue_analytics": ("revenue_month", "channel"),  # unique_combination_of_columns
    }


def test_profiling_the_demo_stores_a_time_series(service: PortalService) -> None:
    outcomes = profile_products(service)
    assert set(outcomes) == {"dp_customer_360", "dp_product_performance", "dp_revenue_analytics"}
    for outcome in outcomes.values():
        profile = outcome.profile
        assert profile.status == "ok", profile.message
        assert profile.duplicate_keys == 0
        assert profile.run_id is not None  # the build it describes
        assert profile.newest_update is not None
        assert {s.label for s in profile.sources} >= {"silver.orders"}
        assert all(s.newest is not None for s in profile.sources)
    again = profile_product(service, "dp_customer_360")
    assert again.compared_with == outcomes["dp_customer_360"].profile.id
    assert again.drift == ()  # same data, no drift
    history = profile_history(service, "dp_customer_360")
    # the demo build profiled once already; these two come after it
    assert [p.id for p in history][-2:] == [outcomes["dp_customer_360"].profile.id, again.profile.id]
    assert freshness(service, "dp_customer_360").state == "fresh"
    assert service.entry("dp_customer_360").row_count == again.profile.row_count

    overview = health_overview(service)
    assert [h.level for h in overview] == ["healthy"] * 3
    later = health_overview(service, now=datetime.now(UTC) + 3 * DAY)
    assert [(h.name, h.level) for h in later][:2] == [
        ("dp_customer_360", "stale"),
        ("dp_product_performance", "stale"),
    ]
    assert later[2].name == "dp_revenue_analytics" and later[2].freshness.state == "fresh"


def test_drift_is_recorded_and_acknowledged(service: PortalService) -> None:
    from portal.auth.identity import Identity

    first = profile_product(service, "dp_revenue_analytics").profile
    con = duckdb.connect(str(service.settings.duckdb_path))
    con.execute("alter table gold.dp_revenue_analytics add column surprise integer")
    con.execute("update gold.dp_revenue_analytics set net_revenue_mom_growth = null")
    con.close()
    outcome = profile_product(service, "dp_revenue_analytics")
    assert outcome.compared_with == first.id
    assert {(d.change, d.column) for d in outcome.drift} >= {
        ("added", "surprise"),
        ("null_rate", "net_revenue_mom_growth"),
    }
    events = drift_events(service, "dp_revenue_analytics", open_only=True)
    assert len(events) == len(outcome.drift)
    assert open_drift_counts(service) == {"dp_revenue_analytics": len(events)}
    done = acknowledge_drift(service, events[0].id, Identity("ann"))
    assert done.acknowledged and done.acknowledged_by == "ann"
    assert len(drift_events(service, "dp_revenue_analytics", open_only=True)) == len(events) - 1
    with pytest.raises(NotFound, match="no drift event 99999"):
        acknowledge_drift(service, 99999, Identity("ann"))


def test_a_missing_product_table_is_recorded_not_raised(service: PortalService) -> None:
    con = duckdb.connect(str(service.settings.duckdb_path))
    con.execute("drop table gold.dp_product_performance")
    con.close()
    outcome = profile_product(service, "dp_product_performance")
    assert outcome.profile.status == "missing"
    assert latest_profile(service, "dp_product_performance") == outcome.profile
    health = {h.name: h for h in health_overview(service)}["dp_product_performance"]
    assert health.level == "failing"
    assert "profile: the table does not exist in the warehouse" in health.problems


def test_unreadable_sources_do_not_spoil_the_profile(known: CountingWarehouse) -> None:
    promise = SourceAge("source.x.raw.gone", "raw.gone", "loaded_at", timedelta(hours=1), None)
    profile = measure(known, sources=[(Relation(None, "raw", "gone"), promise)])
    assert profile.status == "ok"
    assert profile.sources[0].newest is None and "gone" in (profile.sources[0].error or "")
    odd = replace(promise, loaded_at_field="max(((")
    profile = measure(known, sources=[(Relation(None, "gold", "known"), odd)])
    assert profile.status == "ok"
    assert "loaded_at_field is not an SQL expression" in (profile.sources[0].error or "")
    fresh = assess_freshness(
        update_frequency="daily",
        newest_update=NOW,
        profiled_at=NOW,
        last_success=None,
        freshness_column="at",
        stale_factor=2,
        now=NOW,
        sources=profile.sources,
    )
    assert fresh.sources[0].state == "unknown" and fresh.sources[0].error


def test_a_source_expression_is_read_in_the_warehouse_dialect(known: CountingWarehouse) -> None:
    promise = SourceAge("source.x.gold.known", "gold.known", 'coalesce("at", day)', DAY, 2 * DAY)
    profile = measure(known, sources=[(Relation(None, "gold", "known"), promise)])
    assert profile.sources[0].error is None
    assert profile.sources[0].newest == datetime(2026, 1, 3, 10, tzinfo=UTC)
