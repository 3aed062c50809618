"""One warehouse contract, two engines: the same checks on DuckDB and on Trino (Iceberg in Nessie).

Both engines get the same 5,000-row `orders` table, built with each engine's own SQL, and every
check below runs against both through the common `Warehouse` interface.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from trino_stack import fetch

from portal.settings import Settings
from portal.warehouse import (
    BadRequest,
    Filter,
    QueryTimeout,
    Relation,
    RelationMissing,
    Warehouse,
    WarehouseError,
)
from portal.warehouse.duckdb import DuckDBWarehouse
from portal.warehouse.trino import TrinoWarehouse

pytestmark = pytest.mark.trino

CONTRACT_SCHEMA = "contract"
ROWS = 5000


@dataclass
class Engine:
    name: str
    warehouse: Warehouse
    orders: Relation
    slow_sql: str  # runs far longer than any timeout used here
    write_sql: str  # a write the warehouse must refuse

    def with_timeout(self, timeout_s: float) -> Warehouse:
        if isinstance(self.warehouse, DuckDBWarehouse):
            return DuckDBWarehouse(self.warehouse.path, timeout_s=timeout_s, max_rows=10)
        assert isinstance(self.warehouse, TrinoWarehouse)
        return TrinoWarehouse(
            host=self.warehouse.host,
            port=self.warehouse.port,
            catalog=self.warehouse.catalog,
            user=self.warehouse.user,
            http_scheme=self.warehouse.http_scheme,
            timeout_s=timeout_s,
            max_rows=10,
        )


@pytest.fixture(scope="module")
def duckdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("contract") / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"create schema {CONTRACT_SCHEMA}")
    con.execute(
        f"""create table {CONTRACT_SCHEMA}.orders as
           select range as order_id,
                  case range % 3 when 0 then 'web' when 1 then 'store' else 'mobile' end as channel,
                  (range % 100)::decimal(18, 2) as amount,
                  date '2024-01-01' + (range % 365)::integer as order_date,
                  case when range % 10 = 0 then null else 'EU' end as region
           from range({ROWS})"""
    )
    con.close()
    return Engine(
        "duckdb",
        DuckDBWarehouse(path, timeout_s=10, max_rows=1000),
        Relation("shop", CONTRACT_SCHEMA, "orders"),
        slow_sql="select count(*) from range(100000000000) a",
        write_sql=f"create table {CONTRACT_SCHEMA}.evil as select 1 as x",
    )


@pytest.fixture(scope="module")
def trino_engine(stack: Settings) -> Engine:
    catalog = stack.trino_catalog
    fetch(stack, f'create schema if not exists "{catalog}"."{CONTRACT_SCHEMA}"')
    fetch(
        stack,
        f"""create or replace table "{catalog}"."{CONTRACT_SCHEMA}"."orders" as
            select cast(n as bigint) as order_id,
                   case n % 3 when 0 then 'web' when 1 then 'store' else 'mobile' end as channel,
                   cast(n % 100 as decimal(18, 2)) as amount,
                   date_add('day', n % 365, date '2024-01-01') as order_date,
                   case when n % 10 = 0 then null else 'EU' end as region
            from unnest(sequence(0, {ROWS - 1})) as t(n)""",
    )
    warehouse = TrinoWarehouse(
        host=stack.trino_host,
        port=stack.trino_port,
        catalog=catalog,
        # A reader: the local stack's rules (deploy/trino/local/rules.json) give reader-* users
        # read-only access, which is how previews are kept read-only on Trino.
        user="reader-contract",
        http_scheme=stack.trino_http_scheme,
        timeout_s=10,
        max_rows=1000,
    )
    # 10,000 x 10,000 x 10,000 rows: only the timeout ends it.
    huge = "unnest(sequence(1, 10000))"
    return Engine(
        "trino",
        warehouse,
        Relation(catalog, CONTRACT_SCHEMA, "orders"),
        slow_sql=f"select count(*) from {huge} a(x) cross join {huge} b(y) cross join {huge} c(z)",
        write_sql=f'create table "{catalog}"."{CONTRACT_SCHEMA}"."evil" as select 1 as x',
    )


@pytest.fixture(params=["duckdb", "trino"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield request.getfixturevalue(f"{request.param}_engine")


def _type(name: str) -> str:
    return re.sub(r"\s+", "", name.lower())


def test_columns_in_order_with_types(engine: Engine) -> None:
    columns = engine.warehouse.columns(engine.orders)
    assert [c.name for c in columns] == ["order_id", "channel", "amount", "order_date", "region"]
    assert [_type(c.type) for c in columns][2:4] == ["decimal(18,2)", "date"]


def test_preview_is_bounded_and_counts_all_rows(engine: Engine) -> None:
    preview = engine.warehouse.preview(engine.orders, limit=7)
    assert len(preview.rows) == 7
    assert preview.total_rows == ROWS
    assert preview.truncated
    assert engine.warehouse.count(engine.orders) == ROWS


def test_preview_columns_filters_and_order(engine: Engine) -> None:
    preview = engine.warehouse.preview(
        engine.orders,
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


def test_same_answers_on_both_engines(duckdb_engine: Engine, trino_engine: Engine) -> None:
    flt = [Filter("region", "is not null"), Filter("amount", "<", "10.5"), Filter("channel", "!=", "store")]
    answers = [
        e.warehouse.preview(e.orders, filters=flt, order_by="order_id", limit=50)
        for e in (duckdb_engine, trino_engine)
    ]
    assert answers[0].total_rows == answers[1].total_rows > 50
    assert list(answers[0].rows["order_id"]) == [int(x) for x in answers[1].rows["order_id"]]


def test_contains_and_null_filters(engine: Engine) -> None:
    assert engine.warehouse.preview(engine.orders, filters=[Filter("region", "is null")]).total_rows == 500
    assert (
        engine.warehouse.preview(engine.orders, filters=[Filter("channel", "contains", "OB")]).total_rows
        == 1666
    )


def test_filter_values_are_literals_not_sql(engine: Engine) -> None:
    hostile = "web' or '1'='1"
    assert engine.warehouse.preview(engine.orders, filters=[Filter("channel", "=", hostile)]).total_rows == 0


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
def test_bad_requests_say_what_to_fix(engine: Engine, kwargs: dict, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        engine.warehouse.preview(engine.orders, **kwargs)


def test_missing_relation_is_named(engine: Engine) -> None:
    missing = Relation(engine.orders.database, CONTRACT_SCHEMA, "nope")
    with pytest.raises(RelationMissing, match="nope"):
        engine.warehouse.preview(missing)


def test_explain_shows_a_plan(engine: Engine) -> None:
    plan = engine.warehouse.explain(
        f"select channel, count(*) from {engine.orders.schema}.orders where amount > 5 group by channel"
    )
    assert plan.strip()
    assert "orders" in plan.lower()


def test_long_query_is_stopped_by_the_timeout(engine: Engine) -> None:
    slow = engine.with_timeout(1)
    started = time.perf_counter()
    with pytest.raises(QueryTimeout, match=r"longer than 1 s"):
        slow.query(engine.slow_sql)
    assert time.perf_counter() - started < 30


def test_preview_connection_cannot_write(engine: Engine) -> None:
    # The statement check refuses first, whatever rights the user has on the engine...
    with pytest.raises(WarehouseError, match=r"Only reading statements"):
        engine.warehouse.query(engine.write_sql)
    # ...and below it the engine itself refuses (read-only DuckDB file, Trino access rules).
    with pytest.raises(WarehouseError, match=r"(?i)read-only|read only|access denied"):
        engine.warehouse._fetch(engine.write_sql)


def test_summary_and_whole_export_agree_on_both_engines(engine: Engine) -> None:
    flt = [Filter("channel", "=", "web")]
    matching = engine.warehouse.preview(engine.orders, filters=flt, limit=1).total_rows
    summary = {s.column: s for s in engine.warehouse.summary(engine.orders, filters=flt)}
    assert summary["channel"].distinct == 1 and summary["channel"].min == "web"
    assert summary["order_id"].nulls == 0 and summary["order_id"].distinct == matching
    export = engine.warehouse.export(engine.orders, format="parquet", filters=flt, order_by="order_id")
    table = pq.read_table(io.BytesIO(b"".join(export.chunks)))
    assert export.total_rows == matching and table.num_rows == export.rows == min(
        matching, engine.warehouse.max_rows
    )
    ids = table.column("order_id").to_pylist()
    assert ids == sorted(ids)
    assert str(table.schema.field("amount").type) == "decimal128(18, 2)"
    csv = engine.warehouse.export(engine.orders, format="csv", filters=flt, order_by="order_id")
    rows = pacsv.read_csv(io.BytesIO(b"".join(csv.chunks)))
    assert rows.num_rows == table.num_rows and rows.column_names == table.column_names
