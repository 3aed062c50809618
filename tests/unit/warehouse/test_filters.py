"""Preview filters on a real DuckDB file: bounded in number and size, typed before any SQL is
built, refused with the column, the value and what is accepted, never with the generated SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot

from portal.errors import Kind
from portal.warehouse import BadRequest, ColumnInfo, Filter, Relation, WarehouseError
from portal.warehouse.base import MAX_COLUMNS, MAX_FILTERS, MAX_VALUE_CHARS
from portal.warehouse.duckdb import DuckDBWarehouse
from portal.warehouse.trino import TrinoWarehouse

KINDS = Relation("shop", "gold", "kinds")
ROWS = 1000
INT64 = (-(2**63), 2**63 - 1)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One table with a column of each kind a filter treats differently."""
    path = tmp_path_factory.mktemp("filters") / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema gold")
    con.execute(
        f"""create table gold.kinds as
           select range::bigint as id,
                  (range % 7)::integer as small,
                  range::hugeint as huge,
                  (range % 100)::decimal(18, 2) as amount,
                  (range / 4)::double as ratio,
                  (range / 2)::real as half,
                  date '2024-01-01' + (range % 365)::integer as day,
                  timestamp '2024-01-01 00:00:00' + to_hours(range) as at,
                  timestamptz '2024-01-01 00:00:00+00:00' + to_hours(range) as at_tz,
                  range % 2 = 0 as flag,
                  case range % 3 when 0 then 'web' when 1 then 'store' else 'mobile' end as channel,
                  '123e4567-e89b-12d3-a456-426614174000'::uuid as ref,
                  [range % 3, 1] as tags,
                  to_days((range % 5)::integer) as wait,
                  '\\x41'::blob as raw,
                  '{{"a": 1}}'::json as doc
           from range({ROWS})"""
    )
    con.close()
    return path


@pytest.fixture
def warehouse(shop: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(shop, timeout_s=10, max_rows=ROWS)


def total(warehouse: DuckDBWarehouse, *filters: Filter) -> int:
    return warehouse.preview(KINDS, filters=filters, limit=1).total_rows


def nesting(sql: str) -> int:
    """How deep the statement's parentheses nest (string literals aside)."""
    deepest = depth = 0
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and char == ")":
            depth -= 1
    return deepest


# --- how many: filters, columns -------------------------------------------------------------


def test_filters_at_the_cap_run_and_nest_no_deeper_than_one(warehouse: DuckDBWarehouse) -> None:
    one = warehouse.preview(KINDS, filters=[Filter("amount", ">=", "1")], limit=5)
    kinds = [Filter("amount", ">=", "1"), Filter("channel", "contains", "e"), Filter("day", "is not null")]
    many = [kinds[i % len(kinds)] for i in range(MAX_FILTERS)]
    preview = warehouse.preview(KINDS, filters=many, limit=5)
    expected = total(warehouse, *kinds)
    assert 0 < preview.total_rows == expected < ROWS
    # The WHERE is a balanced AND: its nesting does not grow with the number of filters (the old
    # one-`where()`-per-filter chain nested one level per filter; 200 overflowed the stack).
    assert nesting(preview.sql) <= nesting(one.sql) + 3
    assert preview.sql.count(" AND ") == MAX_FILTERS - 1


@pytest.mark.parametrize("count", [MAX_FILTERS + 1, 1000, 100_000])
def test_more_filters_than_the_cap_are_refused_before_any_sql(tmp_path: Path, count: int) -> None:
    # No warehouse file: any statement built and sent would fail as "not built yet" instead.
    nowhere = DuckDBWarehouse(tmp_path / "missing.duckdb", timeout_s=1, max_rows=10)
    with pytest.raises(BadRequest, match=rf"at most {MAX_FILTERS} filters \(got {count:,}\)") as refused:
        nowhere.preview(KINDS, filters=[Filter("id", ">", "1")] * count, limit=1)
    assert refused.value.kind is Kind.INVALID


def test_more_columns_than_the_cap_are_refused_before_any_sql(tmp_path: Path) -> None:
    nowhere = DuckDBWarehouse(tmp_path / "missing.duckdb", timeout_s=1, max_rows=10)
    asked = ["id"] * (MAX_COLUMNS + 1)
    with pytest.raises(BadRequest, match=rf"at most {MAX_COLUMNS} columns \(got {MAX_COLUMNS + 1}\)"):
        nowhere.preview(KINDS, columns=asked, limit=1)


def test_a_column_asked_for_twice_is_returned_once(warehouse: DuckDBWarehouse) -> None:
    preview = warehouse.preview(KINDS, columns=["id", "channel", "id"], limit=3)
    assert preview.columns == ["id", "channel"]
    assert list(preview.rows.columns) == ["id", "channel"]


# --- numbers: finite, within the column type's range ------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [
        ("id", "1e999", "whole number from -9223372036854775808 to 9223372036854775807"),
        ("id", "nan", "whole number"),
        ("id", "inf", "whole number"),
        ("id", "-inf", "whole number"),
        ("id", str(2**70), "64-bit"),
        ("id", str(2**63), "64-bit"),
        ("id", "1.5", "whole number"),
        ("small", "3000000000", "from -2147483648 to 2147483647"),
        ("huge", str(2**130), "128-bit"),
        ("amount", "1e30", "at most 16 digits before the decimal point and 2 after it"),
        ("amount", "1e16", "at most 16 digits"),
        ("amount", "0.001", "2 after it"),
        ("amount", "nan", "finite number"),
        ("amount", "-Infinity", "finite number"),
        ("ratio", "1e999", "finite number"),
        ("ratio", "nan", "finite number"),
        ("ratio", "inf", "finite number"),
        ("ratio", "-inf", "finite number"),
        ("half", "1e39", "finite number"),
        ("id", "0x10", "whole number"),
    ],
)
def test_numbers_out_of_the_columns_range_are_the_callers_to_fix(
    warehouse: DuckDBWarehouse, column: str, value: str, accepted: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        total(warehouse, Filter(column, ">", value))
    message = str(refused.value)
    assert refused.value.kind is Kind.INVALID
    assert f"{column!r} is numeric" in message and repr(value) in message and accepted in message
    assert "SELECT" not in message.upper() and "LINE 1" not in message


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("id", str(INT64[1]), 0),
        ("id", str(INT64[0]), ROWS),
        ("id", " 5 ", ROWS - 6),
        ("id", "1e3", 0),  # 1000, written as a power of ten: a whole number
        ("id", "998", 1),
        ("huge", str(2**100), 0),
        ("amount", "9999999999999999.99", 0),
        ("amount", "98.5", 10),
        ("amount", "98.50", 10),
        ("ratio", "1e308", 0),
        ("ratio", "249.5", 1),
        ("half", "499", 1),
    ],
)
def test_numbers_within_range_compare_exactly(
    warehouse: DuckDBWarehouse, column: str, value: str, expected: int
) -> None:
    assert total(warehouse, Filter(column, ">", value)) == expected


def test_an_integer_equal_to_a_fraction_is_refused_not_rounded(warehouse: DuckDBWarehouse) -> None:
    # CAST('1.5' AS BIGINT) is 2: `id = 1.5` used to answer the row with id 2.
    with pytest.raises(BadRequest, match="whole number"):
        total(warehouse, Filter("id", "=", "1.5"))


# --- dates, times, booleans, uuids, lists -----------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [
        ("day", "tomorrow", "a date like 2024-01-31"),
        ("day", "2024-02-30", "a date like 2024-01-31"),
        ("at", "nope", "a date and time like 2024-01-31 13:45:00"),
        ("at", "2024-01-01 10:00:00+02:00", "without a UTC offset"),
        ("at", "2024-01-01+02:00", "without a UTC offset"),  # not two o'clock, as fromisoformat reads it
        ("at_tz", "soon", "2024-01-31 13:45:00+00:00"),
        ("flag", "maybe", "true or false"),
        ("ref", "not-a-uuid", "a UUID like"),
        ("doc", "{nope", "JSON text"),
    ],
)
def test_values_that_do_not_parse_as_the_columns_type_are_refused(
    warehouse: DuckDBWarehouse, column: str, value: str, accepted: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        total(warehouse, Filter(column, "=", value))
    message = str(refused.value)
    assert repr(column) in message and repr(value) in message and accepted in message
    assert "SELECT" not in message.upper()


def test_typed_values_that_parse_compare_as_their_type(warehouse: DuckDBWarehouse) -> None:
    assert total(warehouse, Filter("day", "=", "2024-01-02")) == 3  # ids 1, 366, 731
    assert total(warehouse, Filter("day", "=", "20240102")) == 3  # ISO basic format
    assert total(warehouse, Filter("at", "<", "2024-01-01 10:00")) == 10
    assert total(warehouse, Filter("at", "<", "2024-01-01T10:00:00")) == 10
    assert total(warehouse, Filter("at_tz", "<", "2024-01-01T12:00:00+02:00")) == 10
    assert total(warehouse, Filter("at_tz", "<", "2024-01-01 10:00:00Z")) == 10
    assert total(warehouse, Filter("flag", "=", "TRUE")) == ROWS // 2
    assert total(warehouse, Filter("flag", "=", "false")) == ROWS // 2
    assert total(warehouse, Filter("ref", "=", "123E4567-E89B-12D3-A456-426614174000")) == ROWS
    assert total(warehouse, Filter("doc", "=", '{"a": 1}')) == ROWS
    with pytest.raises(BadRequest, match="give JSON text"):  # json.loads would overflow the stack
        total(warehouse, Filter("doc", "=", "[" * (MAX_VALUE_CHARS - 1)))


def test_lists_cannot_be_compared_but_can_be_searched(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(BadRequest, match=r"'tags' is BIGINT\[\].*contains, is null or is not null"):
        total(warehouse, Filter("tags", "=", "1"))
    assert total(warehouse, Filter("tags", "contains", "2, 1")) == 333  # range % 3 == 2
    assert total(warehouse, Filter("tags", "is not null")) == ROWS


def test_an_engine_refusal_does_not_echo_the_generated_sql(warehouse: DuckDBWarehouse) -> None:
    # Blobs (like intervals) are left to the engine to read; its refusal names the value, not the
    # statement it was in.
    assert total(warehouse, Filter("raw", "=", "A")) == ROWS
    with pytest.raises(WarehouseError) as refused:
        total(warehouse, Filter("raw", "=", "\\xZZ"))
    message = str(refused.value)
    assert "xZZ" in message and "DuckDB" in message
    assert "SELECT" not in message.upper() and "LINE 1" not in message and '"gold"' not in message


# --- text: length, NUL, lone surrogates ---------------------------------------------------------


def test_a_value_at_the_length_cap_works_and_one_over_is_refused(warehouse: DuckDBWarehouse) -> None:
    assert total(warehouse, Filter("channel", "=", "w" * MAX_VALUE_CHARS)) == 0
    with pytest.raises(BadRequest, match=rf"{MAX_VALUE_CHARS + 1:,} characters.*at most {MAX_VALUE_CHARS:,}"):
        total(warehouse, Filter("channel", "contains", "w" * (MAX_VALUE_CHARS + 1)))


@pytest.mark.parametrize(
    ("value", "named"), [("we\x00b", "NUL"), ("web\ud800", "surrogate"), ("\udfff", "surrogate")]
)
def test_nul_and_lone_surrogates_in_values_are_refused(
    warehouse: DuckDBWarehouse, value: str, named: str
) -> None:
    for op in ("=", "contains"):
        with pytest.raises(BadRequest, match=rf"'channel'.*{named}"):
            total(warehouse, Filter("channel", op, value))


@pytest.mark.parametrize("column", ["chan\x00nel", "channel\ud800", "c" * 100_000])
def test_odd_column_names_are_unknown_columns_named_briefly(warehouse: DuckDBWarehouse, column: str) -> None:
    for attempt in (
        {"filters": [Filter(column, "=", "web")]},
        {"columns": [column]},
        {"order_by": column},
    ):
        with pytest.raises(BadRequest, match="has no column") as refused:
            warehouse.preview(KINDS, limit=1, **attempt)  # type: ignore[arg-type]
        message = str(refused.value)
        assert len(message) < 1000
        message.encode("utf-8")  # a message is always sendable text


def test_an_unknown_operator_is_named_before_a_missing_value(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(BadRequest, match="Unknown filter operator '~'"):
        total(warehouse, Filter("amount", "~"))


# --- the same statements on Trino, rendered without a server -----------------------------------


def test_trino_renders_the_same_bounded_typed_statements() -> None:
    trino = TrinoWarehouse(
        host="localhost", port=1, catalog="iceberg", user="nobody", timeout_s=1, max_rows=10
    )
    described = [
        ColumnInfo("id", "bigint"),
        ColumnInfo("amount", "decimal(18,2)"),
        ColumnInfo("ratio", "double"),
        ColumnInfo("at", "timestamp(6)"),
        ColumnInfo("at_tz", "timestamp(6) with time zone"),
        ColumnInfo("day", "date"),
        ColumnInfo("flag", "boolean"),
        ColumnInfo("channel", "varchar"),
    ]
    relation = Relation(None, "gold", "kinds")
    filters = [
        Filter("id", ">=", "1e3"),
        Filter("amount", "<", "10.5"),
        Filter("ratio", "!=", "0.25"),
        Filter("at", "<", "2024-01-01T10:00"),
        Filter("at_tz", "<", "2024-01-01 10:00Z"),
        Filter("day", "=", "20240102"),
        Filter("flag", "=", "True"),
        Filter("channel", "contains", "EB"),
    ]
    many = [filters[i % len(filters)] for i in range(MAX_FILTERS)]
    select, count = trino.preview_statements(relation, described, filters=many, limit=5)
    sql = select.sql(dialect="trino")
    assert sqlglot.parse_one(sql, read="trino") is not None
    assert '"iceberg"."gold"."kinds"' in sql and sql.endswith("LIMIT 5")
    for rendered in (
        '"id" >= 1000',
        "\"amount\" < CAST('10.5' AS DECIMAL(18, 2))",
        "\"ratio\" <> CAST('0.25' AS DOUBLE)",
        "\"at\" < CAST('2024-01-01 10:00:00' AS TIMESTAMP(6))",
        "\"at_tz\" < CAST('2024-01-01 10:00:00+00:00' AS TIMESTAMP(6) WITH TIME ZONE)",
        "\"day\" = CAST('2024-01-02' AS DATE)",
        '"flag" = TRUE',
        "STRPOS(LOWER(CAST(\"channel\" AS VARCHAR)), 'eb') > 0",
    ):
        assert rendered in sql
    assert nesting(sql) <= 4 and sql.count(" AND ") == MAX_FILTERS - 1
    assert count.sql(dialect="trino").startswith('SELECT COUNT(*) FROM "iceberg"."gold"."kinds" WHERE')
    with pytest.raises(BadRequest, match="finite number"):
        trino.preview_statements(relation, described, filters=[Filter("ratio", "=", "nan")], limit=5)
