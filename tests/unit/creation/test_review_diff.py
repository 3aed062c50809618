"""What a reviewer is shown of a proposed change's rows: the data diff on a real DuckDB file read
through the portal's warehouse. The schema and contract diff is tested in `test_review_schema`."""

from __future__ import annotations

import json

import duckdb
import pytest

from portal.creation.review_diff import data_diff
from portal.warehouse import Relation, RelationMissing
from portal.warehouse.duckdb import DuckDBWarehouse

HOSTILE = 'it\'s "odd" – prix €'

# The published version lives in gold, the proposed one in audit; each pair tells one story.
TABLES = """
create schema gold;
create schema audit;
create table gold.customers (id integer, name varchar, signup date, balance decimal(10, 2), note varchar);
insert into gold.customers values
  (1, 'Ann', '2024-01-01', 10.50, null), (2, 'Bob', '2024-01-02', 20.00, null),
  (3, 'Cy', '2024-01-03', 30.00, 'x'), (4, 'Di', null, 40.00, 'y'), (5, 'Ed', '2024-01-05', null, null);
create table audit.customers (id integer, name varchar, signup date, balance decimal(10, 2), note varchar);
insert into audit.customers values
  (1, 'Ann', '2024-01-01', 10.50, null), (2, 'Bob', '2024-01-02', 20.00, 'vip'),
  (4, 'Di', '2024-02-04', 41.00, 'y'), (5, 'Ed', '2024-01-05', null, null),
  (6, 'Fa', '2024-01-06', 60.25, null), (7, 'Gil', null, null, null);

create table gold.sales (region varchar, day date, amount decimal(12, 2), qty bigint);
insert into gold.sales values
  ('EU', '2024-01-01', 1.00, 1), ('EU', '2024-01-02', 2.00, 2), ('US', '2024-01-01', 3.00, 3);
create table audit.sales (region varchar, day date, amount decimal(12, 2), qty bigint);
insert into audit.sales values
  ('EU', '2024-01-01', 1.00, 1), ('EU', '2024-01-02', 2.50, 2), ('US', '2024-01-02', 3.00, 3),
  ('US', '2024-01-03', null, 9007199254740993);

create table gold.dups (id integer, v varchar);
insert into gold.dups values (1, 'a'), (1, 'a'), (2, 'b');
create table audit.dups (id integer, v varchar);
insert into audit.dups values (1, 'a'), (2, 'b'), (2, 'c'), (3, 'd');

create table gold.shape (id integer, kept varchar, old_col integer, "Qty" integer);
insert into gold.shape values (1, 'a', 10, 1), (2, 'b', 20, 2);
create table audit.shape (id integer, kept varchar, new_col date, qty varchar);
insert into audit.shape values (1, 'a', '2024-01-01', '1'), (2, 'B', null, '2');

create table gold.kinds (id integer, seen_at timestamp, ok boolean, ratio double, tags varchar[]);
create table audit.kinds as select * from gold.kinds;
insert into audit.kinds values
  (1, '2024-01-01 10:30:00', true, 'nan', ['a', 'b']), (2, null, null, null, null), (3, null, false, 0.5, []);

create table gold.apart (x integer);
insert into gold.apart values (1), (2);
create table audit.apart (y integer);
insert into audit.apart values (1);
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    path = tmp_path_factory.mktemp("review") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(TABLES)
    hostile = '"' + HOSTILE.replace('"', '""') + '"'
    for schema, rows in (
        ("gold", "(1, 'x', 1), (2, 'y', 2)"),
        ("audit", "(1, 'x', 1), (2, 'z', 2), (3, 'w', 3)"),
    ):
        con.execute(
            f'create table {schema}."odd table" ({hostile} integer, "Ünï cödé" varchar, "a b" integer)'
        )
        con.execute(f'insert into {schema}."odd table" values {rows}')
    con.close()
    return DuckDBWarehouse(path, timeout_s=10, max_rows=100)


def gold(name: str) -> Relation:
    return Relation("warehouse", "gold", name)


def audit(name: str) -> Relation:
    return Relation("warehouse", "audit", name)


def roundtrips(value: object) -> None:
    """JSON-ready means the strict encoder takes it (no NaN, no dates, no decimals)."""
    json.dumps(value, allow_nan=False)


def test_by_key_counts_added_removed_and_changed_rows(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("customers"), audit("customers"), key=["id"])
    assert (diff.rows_before, diff.rows_after) == (5, 6)
    # 2 gains a note (NULL -> value: changed); 1 and 5 keep their NULLs (NULL -> NULL: unchanged).
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (2, 1, 2, 2)
    assert diff.key == ["id"]
    assert diff.compared == ["name", "signup", "balance", "note"]
    assert diff.left_out == [] and diff.note is None
    assert diff.samples == [
        {"change": "added", "key": {"id": 6}, "before": None,
         "after": {"id": 6, "name": "Fa", "signup": "2024-01-06", "balance": "60.25", "note": None}},
        {"change": "added", "key": {"id": 7}, "before": None,
         "after": {"id": 7, "name": "Gil", "signup": None, "balance": None, "note": None}},
        {"change": "removed", "key": {"id": 3},
         "before": {"id": 3, "name": "Cy", "signup": "2024-01-03", "balance": "30.00", "note": "x"}, "after": None},
        {"change": "changed", "key": {"id": 2},
         "before": {"id": 2, "name": "Bob", "signup": "2024-01-02", "balance": "20.00", "note": None},
         "after": {"id": 2, "name": "Bob", "signup": "2024-01-02", "balance": "20.00", "note": "vip"},
         "columns": ["note"]},
        {"change": "changed", "key": {"id": 4},
         "before": {"id": 4, "name": "Di", "signup": None, "balance": "40.00", "note": "y"},
         "after": {"id": 4, "name": "Di", "signup": "2024-02-04", "balance": "41.00", "note": "y"},
         "columns": ["signup", "balance"]},
    ]  # fmt: skip
    roundtrips(diff.as_dict())
    assert diff.as_dict()["note"] is None


def test_the_sample_is_bounded_per_kind(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("customers"), audit("customers"), key=["ID"], sample=1)
    assert [(s["change"], s["key"]) for s in diff.samples] == [
        ("added", {"id": 6}),
        ("removed", {"id": 3}),
        ("changed", {"id": 2}),
    ]
    assert data_diff(warehouse, gold("customers"), audit("customers"), key=["id"], sample=0).samples == []
    assert diff.changed == 2  # the counts are never sampled


def test_without_a_key_rows_are_compared_whole(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("customers"), audit("customers"))
    # The two changed rows are each one removed and one added.
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (4, 3, None, 2)
    assert diff.key == []
    assert diff.note == (
        "No primary key: rows compared whole; declare a primary_key constraint to see changed rows."
    )
    assert [(s["change"], s["key"], (s["after"] or s["before"])["id"]) for s in diff.samples] == [
        ("added", {}, 2), ("added", {}, 4), ("added", {}, 6), ("added", {}, 7),
        ("removed", {}, 2), ("removed", {}, 3), ("removed", {}, 4),
    ]  # fmt: skip
    assert diff.samples[0]["after"] == {
        "id": 2,
        "name": "Bob",
        "signup": "2024-01-02",
        "balance": "20.00",
        "note": "vip",
    }
    roundtrips(diff.as_dict())


def test_whole_rows_are_multisets(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("dups"), audit("dups"))
    # (1, a) twice -> once is one removed; (2, c) and (3, d) are new.
    assert (diff.rows_before, diff.rows_after, diff.added, diff.removed, diff.unchanged) == (3, 4, 2, 1, 2)
    assert [s["before"] or s["after"] for s in diff.samples] == [
        {"id": 2, "v": "c"}, {"id": 3, "v": "d"}, {"id": 1, "v": "a"},
    ]  # fmt: skip


def test_composite_key_and_exact_big_integers(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("sales"), audit("sales"), key=("region", "day"))
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (2, 1, 1, 1)
    assert diff.compared == ["amount", "qty"]
    added = [s for s in diff.samples if s["change"] == "added"]
    assert [s["key"] for s in added] == [
        {"region": "US", "day": "2024-01-02"},
        {"region": "US", "day": "2024-01-03"},
    ]
    # A NULL in an integer column must not turn its other values into floats (2**53 + 1 survives).
    assert added[1]["after"] == {"region": "US", "day": "2024-01-03", "amount": None, "qty": 9007199254740993}
    changed = [s for s in diff.samples if s["change"] == "changed"]
    assert changed == [
        {"change": "changed", "key": {"region": "EU", "day": "2024-01-02"},
         "before": {"region": "EU", "day": "2024-01-02", "amount": "2.00", "qty": 2},
         "after": {"region": "EU", "day": "2024-01-02", "amount": "2.50", "qty": 2},
         "columns": ["amount"]},
    ]  # fmt: skip
    roundtrips(diff.as_dict())


def test_duplicate_keys_are_said_and_counted_once(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("dups"), audit("dups"), key=["id"])
    # Keys 1 and 2 are in both, 3 is new; 2's rows differ between the versions (b vs c).
    assert (diff.rows_before, diff.rows_after) == (3, 4)
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (1, 0, 1, 1)
    assert diff.note == (
        "The key is not unique (1 duplicated keys in the published version, 1 in the proposed one): "
        "counts are of distinct keys."
    )


def test_a_new_product_is_all_added(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, None, audit("customers"), key=["id"], sample=2)
    assert diff.before is None and diff.after == "warehouse.audit.customers"
    assert (diff.rows_before, diff.rows_after, diff.added, diff.removed, diff.changed) == (0, 6, 6, 0, 0)
    assert diff.note == "No published version: every row is new."
    assert [s["key"] for s in diff.samples] == [{"id": 1}, {"id": 2}]
    assert diff.samples[1]["after"] == {
        "id": 2,
        "name": "Bob",
        "signup": "2024-01-02",
        "balance": "20.00",
        "note": "vip",
    }
    assert data_diff(warehouse, None, audit("dups")).samples[0]["key"] == {}
    roundtrips(diff.as_dict())


def test_columns_of_one_version_are_left_out(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("shape"), audit("shape"), key=["id"])
    assert diff.left_out == ["new_col", "old_col"]
    # "Qty" and qty are one column (engines differ on case), retyped, so compared as text.
    assert diff.compared == ["kept", "qty"]
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (0, 0, 1, 1)
    assert diff.notes == [
        "Left out of the comparison (in one version only; see the schema diff): `new_col`, `old_col`.",
        "Compared as text, since their type changed: `qty`.",
    ]
    [changed] = diff.samples
    assert changed["before"] == {"id": 2, "kept": "b", "Qty": 2}
    assert changed["after"] == {"id": 2, "kept": "B", "qty": "2"}
    assert changed["columns"] == ["kept"]


def test_a_key_missing_from_one_version_falls_back_to_whole_rows(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("shape"), audit("shape"), key=["old_col"])
    assert diff.key == [] and diff.changed is None
    assert diff.notes[-1] == "The key column(s) `old_col` are not in both versions: rows compared whole."
    assert (diff.added, diff.removed) == (1, 1)


def test_hostile_names_are_quoted(warehouse: DuckDBWarehouse) -> None:
    before, after = gold("odd table"), audit("odd table")
    diff = data_diff(warehouse, before, after, key=[HOSTILE])
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (1, 0, 1, 1)
    assert diff.compared == ["Ünï cödé", "a b"]
    assert diff.samples[0] == {
        "change": "added", "key": {HOSTILE: 3}, "before": None, "after": {HOSTILE: 3, "Ünï cödé": "w", "a b": 3},
    }  # fmt: skip
    assert diff.samples[1]["columns"] == ["Ünï cödé"]
    whole = data_diff(warehouse, before, after)
    assert (whole.added, whole.removed) == (2, 1)


def test_sampled_values_are_json_ready(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("kinds"), audit("kinds"), key="id")  # one column's name
    assert diff.key == ["id"] and diff.added == 3
    assert [s["after"] for s in diff.samples] == [
        # NaN has no JSON: it is shown as None, like NULL.
        {"id": 1, "seen_at": "2024-01-01T10:30:00", "ok": True, "ratio": None, "tags": ["a", "b"]},
        {"id": 2, "seen_at": None, "ok": None, "ratio": None, "tags": None},
        {"id": 3, "seen_at": None, "ok": False, "ratio": 0.5, "tags": []},
    ]
    roundtrips(diff.as_dict())


def test_versions_without_a_shared_column_are_only_counted(warehouse: DuckDBWarehouse) -> None:
    diff = data_diff(warehouse, gold("apart"), audit("apart"), key=["x"])
    assert (diff.rows_before, diff.rows_after, diff.added, diff.removed, diff.changed) == (
        2,
        1,
        None,
        None,
        None,
    )
    assert diff.samples == [] and diff.left_out == ["y", "x"]
    assert diff.notes[-1] == "The versions share no column, so their rows could not be compared."


def test_warehouse_errors_reach_the_caller(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(RelationMissing):
        data_diff(warehouse, gold("nowhere"), audit("customers"), key=["id"])
