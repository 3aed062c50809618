"""The DuckDB warehouse on a real file: bounded, read-only, locked down, interruptible."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from portal.warehouse import (
    BadRequest,
    ColumnInfo,
    Filter,
    QueryTimeout,
    Relation,
    RelationMissing,
    WarehouseError,
    WarehouseUnavailable,
)
from portal.warehouse.duckdb import DuckDBWarehouse

ORDERS = Relation("shop", "gold", "orders")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema gold")
    con.execute(
        """create table gold.orders as
           select range as order_id,
                  case range % 3 when 0 then 'web' when 1 then 'store' else 'mobile' end as channel,
                  (range % 100)::decimal(18, 2) as amount,
                  date '2024-01-01' + (range % 365)::integer as order_date,
                  case when range % 10 = 0 then null else 'EU' end as region
           from range(5000)"""
    )
    con.close()
    return path


@pytest.fixture
def warehouse(shop: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(shop, timeout_s=5, max_rows=1000)


def test_columns_in_order_with_types(warehouse: DuckDBWarehouse) -> None:
    columns = warehouse.columns(ORDERS)
    assert [c.name for c in columns] == ["order_id", "channel", "amount", "order_date", "region"]
    assert columns[2].type == "DECIMAL(18,2)"


def test_preview_is_bounded_and_counts_all_rows(warehouse: DuckDBWarehouse) -> None:
    preview = warehouse.preview(ORDERS, limit=7)
    assert len(preview.rows) == 7
    assert preview.total_rows == 5000
    assert preview.truncated


def test_preview_columns_filters_and_order(warehouse: DuckDBWarehouse) -> None:
    preview = warehouse.preview(
        ORDERS,
        columns=["order_id", "channel"],
        filters=[
            Filter("channel", "=", "web"),
            Filter("amount", ">=", "90"),
            Filter("order_date", "<", "2024-03-01"),
        ],
        order_by="order_id",
        descending=True,
        limit=1000,
    )
    assert list(preview.rows.columns) == ["order_id", "channel"]
    assert set(preview.rows["channel"]) == {"web"}
    assert preview.total_rows == len(preview.rows) > 0
    assert list(preview.rows["order_id"]) == sorted(preview.rows["order_id"], reverse=True)


def test_contains_and_null_filters(warehouse: DuckDBWarehouse) -> None:
    assert warehouse.preview(ORDERS, filters=[Filter("region", "is null")]).total_rows == 500
    assert warehouse.preview(ORDERS, filters=[Filter("channel", "contains", "OB")]).total_rows == 1666


def test_filter_values_are_literals_not_sql(warehouse: DuckDBWarehouse) -> None:
    hostile = "web' or '1'='1"
    assert warehouse.preview(ORDERS, filters=[Filter("channel", "=", hostile)]).total_rows == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ["nope"]}, "has no column 'nope'; its columns are order_id"),
        ({"limit": 1001}, "limit 1001 is over the maximum of 1000 rows"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"filters": [Filter("amount", "=", "ten")]}, "'amount' is numeric"),
        ({"filters": [Filter("amount", "=", "")]}, "needs a value"),
        ({"filters": [Filter("amount", "~", "1")]}, "Unknown filter operator"),
        ({"order_by": "drop table"}, "has no column 'drop table'"),
    ],
)
def test_bad_requests_say_what_to_fix(warehouse: DuckDBWarehouse, kwargs: dict, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        warehouse.preview(ORDERS, **kwargs)


def test_only_reading_statements_are_sent(warehouse: DuckDBWarehouse) -> None:
    for statement in (
        "create table gold.evil as select 1",
        "select 1; drop table gold.orders",
        "explain analyze delete from gold.orders",
        "set enable_external_access = true",
        "attach '/tmp/x.duckdb'",
    ):
        with pytest.raises(BadRequest, match=r"Only reading statements|exactly one statement"):
            warehouse.query(statement)
    assert warehouse.query("select count(*) as n from gold.orders")["n"][0] == 5000
    assert "SEQ_SCAN" in warehouse.explain("select * from gold.orders").upper().replace(" ", "_")


def test_describe_gives_the_columns_of_a_query_with_their_types(warehouse: DuckDBWarehouse) -> None:
    """What the creation dry run learns of a product's result: names and types, in order, also
    when the query returns no rows (DuckDB describes the query, it need not run it)."""
    sql = "select order_id, amount * 2 as doubled, channel, count(*) over () as n from gold.orders"
    expected = [
        ColumnInfo("order_id", "BIGINT"),
        ColumnInfo("doubled", "DECIMAL(18,2)"),
        ColumnInfo("channel", "VARCHAR"),
        ColumnInfo("n", "BIGINT"),
    ]
    assert warehouse.describe(sql) == expected
    with warehouse.session():  # inside a session, on its connection
        assert warehouse.describe(f"{sql} where false") == expected


def test_describe_says_what_the_warehouse_refused(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError, match=r'DuckDB refused the query: Binder Error: .*"nope"'):
        warehouse.describe("select nope from gold.orders")
    with pytest.raises(RelationMissing, match="The model may not be built yet"):
        warehouse.describe("select * from gold.missing")
    with pytest.raises(BadRequest):
        warehouse.describe("select 1) as x; drop table gold.orders; select * from (select 1")
    assert warehouse.count(ORDERS) == 5000


def test_connection_is_read_only_and_locked_down(warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    """Below the statement check, the connection itself refuses (defence in depth)."""
    with pytest.raises(WarehouseError, match=r"read-only|read only"):
        warehouse._fetch("create table gold.evil as select 1")
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    with pytest.raises(WarehouseError, match="disabled"):
        warehouse.query(f"select * from read_csv('{outside}')")
    with pytest.raises(WarehouseError, match="locked"):
        warehouse._fetch("set enable_external_access = true")


def test_long_query_is_interrupted(shop: Path) -> None:
    slow = DuckDBWarehouse(shop, timeout_s=0.3, max_rows=10)
    with pytest.raises(QueryTimeout, match=r"longer than 0\.3 s"):
        slow.query("select count(*) from range(100000000000) a")


def test_missing_relation_and_missing_file(warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    with pytest.raises(RelationMissing, match="dbt build --select nope"):
        warehouse.preview(Relation(None, "gold", "nope"))
    with pytest.raises(WarehouseUnavailable, match="make demo"):
        DuckDBWarehouse(tmp_path / "none.duckdb", timeout_s=1, max_rows=1).preview(ORDERS, limit=1)


def test_connections_are_not_held_between_queries(warehouse: DuckDBWarehouse, shop: Path) -> None:
    warehouse.preview(ORDERS, limit=1)
    writer = duckdb.connect(str(shop))  # dbt must be able to write whenever the portal is idle
    writer.close()


def test_a_preview_opens_the_file_once_and_releases_it(
    warehouse: DuckDBWarehouse, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[duckdb.DuckDBPyConnection] = []
    real_connect = warehouse._connect

    def counting_connect() -> duckdb.DuckDBPyConnection:
        opened.append(real_connect())
        return opened[-1]

    monkeypatch.setattr(warehouse, "_connect", counting_connect)
    preview = warehouse.preview(ORDERS, filters=[Filter("channel", "=", "web")], limit=5)
    assert len(preview.rows) == 5 and preview.total_rows == 1667
    assert len(opened) == 1, "columns, rows and count share one connection"
    with warehouse.session():
        warehouse.preview(ORDERS, limit=1)  # nested: the outer session's connection
        warehouse.count(ORDERS)
    assert len(opened) == 2
    writer = duckdb.connect(str(shop))  # released at the end of each session
    writer.close()


def test_a_session_outlives_an_interrupted_query(shop: Path) -> None:
    slow = DuckDBWarehouse(shop, timeout_s=0.3, max_rows=10)
    with slow.session():
        with pytest.raises(QueryTimeout):
            slow.query("select count(*) from range(100000000000) a")
        assert slow.count(ORDERS) == 5000


def test_an_export_streams_one_chunk_a_record_batch(
    warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("portal.warehouse.duckdb.BATCH_ROWS", 1000)
    result = DuckDBWarehouse(warehouse.path, timeout_s=5, max_rows=4500).export(
        ORDERS, format="parquet", order_by="order_id", descending=True
    )
    assert (result.rows, result.total_rows, result.cut) == (4500, 5000, True)
    chunks = list(result.chunks)
    assert len(chunks) >= 5  # a row group a batch, each handed on as it was written, then the footer
    table = pq.read_table(io.BytesIO(b"".join(chunks)))
    assert pq.ParquetFile(io.BytesIO(b"".join(chunks))).metadata.num_row_groups == 5
    assert table.column("order_id").to_pylist() == list(range(4999, 499, -1))


def test_an_export_sorted_by_an_unknown_column_is_refused_naming_no_sql(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError) as refused:
        warehouse.export(ORDERS, format="csv", filters=[Filter("channel", "=", "web")], order_by="nope")
    assert "SELECT" not in str(refused.value) and "nope" in str(refused.value)


def test_nested_columns_are_refused_as_csv_and_exported_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "nested.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema gold")
        con.execute(
            "create table gold.baskets as select range as id, [range, range + 1] as items from range(3)"
        )
    baskets = Relation(None, "gold", "baskets")
    nested = DuckDBWarehouse(path, timeout_s=5, max_rows=10)
    with pytest.raises(BadRequest, match=r"CSV cannot hold nested values .* 'items'; export as Parquet"):
        nested.export(baskets, format="csv")
    table = pq.read_table(io.BytesIO(b"".join(nested.export(baskets, format="parquet").chunks)))
    assert table.column("items").to_pylist() == [[0, 1], [1, 2], [2, 3]]
    summary = {s.column: s for s in nested.summary(baskets)}
    assert (summary["items"].nulls, summary["items"].distinct, summary["items"].min) == (0, None, None)
    assert (summary["id"].distinct, summary["id"].min, summary["id"].max) == (3, 0, 2)
