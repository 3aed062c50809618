"""The product preview's core on a private copy of the real demo build: sorting by any column,
several filters at once, the whole filtered result exported (CSV and Parquet alike, cut at the
maximum rows) and each column summarised over every matching row, each checked against DuckDB."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from catalog_db.models import UsageEvent
from portal.auth.identity import Identity
from portal.catalog.preview import export, preview
from portal.service import PortalService
from portal.settings import Settings
from portal.warehouse import BadRequest, Filter
from portal.warehouse.base import MAX_FILTERS
from tests.conftest import copy_demo

ME = Identity("tester")
PRODUCT = "dp_customer_360"
BOUND = 40  # PORTAL_PREVIEW_MAX_ROWS here: the demo has more customers than that
# Three filters at once, and the same condition as SQL for DuckDB itself.
FILTERS = [
    Filter("order_count", ">=", "1"),
    Filter("email", "is not null"),
    Filter("segment", "!=", "Prospect"),
]
WHERE = "order_count >= 1 and email is not null and segment != 'Prospect'"


@pytest.fixture(scope="module")
def service(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> PortalService:
    base = tmp_path_factory.mktemp("preview") / "portal"
    return PortalService(
        Settings.from_env({**copy_demo(demo_env, base), "PORTAL_PREVIEW_MAX_ROWS": str(BOUND)})
    )


def direct(service: PortalService, sql: str) -> list[tuple[Any, ...]]:
    """`sql` run by DuckDB itself on the warehouse, with {t} the product's table."""
    relation = service.relation(service.resolve(PRODUCT))
    with duckdb.connect(str(service.settings.duckdb_path), read_only=True) as con:
        return con.execute(sql.format(t=f'"{relation.schema}"."{relation.name}"')).fetchall()


@pytest.mark.parametrize("column", ["lifetime_value", "signed_up_at", "segment", "customer_id"])
def test_a_preview_sorts_by_any_column_both_ways(service: PortalService, column: str) -> None:
    heads = []
    for descending, way in ((False, "asc"), (True, "desc")):
        shown = preview(service, PRODUCT, identity=ME, limit=25, order_by=column, descending=descending)
        expected = direct(service, f"select {column} from {{t}} order by {column} {way} limit 25")
        assert list(shown.rows[column]) == [row[0] for row in expected], way
        heads.append(expected[0][0])
    assert heads[0] != heads[1]  # the two ways differ: a sort that could be wrong


def test_several_filters_all_hold_and_are_counted_over_every_row(service: PortalService) -> None:
    shown = preview(service, PRODUCT, identity=ME, filters=FILTERS, limit=BOUND)
    (expected,) = direct(service, f"select count(*) from {{t}} where {WHERE}")[0]
    (everyone,) = direct(service, "select count(*) from {t}")[0]
    assert shown.total_rows == expected and 0 < expected < everyone
    assert (shown.rows["order_count"] >= 1).all() and shown.rows["email"].notna().all()
    assert "Prospect" not in set(shown.rows["segment"])


def test_more_filters_than_the_cap_are_refused_naming_it(service: PortalService) -> None:
    with pytest.raises(BadRequest, match=f"at most {MAX_FILTERS} filters"):
        preview(service, PRODUCT, identity=ME, filters=[FILTERS[0]] * (MAX_FILTERS + 1))


def exported(service: PortalService, format: str, **kwargs: Any) -> tuple[Any, bytes, int]:
    result = export(service, PRODUCT, identity=ME, format=format, **kwargs)
    chunks = list(result.chunks)
    assert all(isinstance(c, bytes) and c for c in chunks)
    return result, b"".join(chunks), len(chunks)


def test_an_export_is_the_whole_filtered_sorted_result_cut_at_the_bound(service: PortalService) -> None:
    (matching,) = direct(service, f"select count(*) from {{t}} where {WHERE}")[0]
    assert matching > BOUND
    result, data, _ = exported(service, "csv", filters=FILTERS, order_by="lifetime_value", descending=True)
    assert (result.rows, result.total_rows, result.limit, result.cut) == (BOUND, matching, BOUND, True)
    table = pa_csv.read_csv(io.BytesIO(data))
    assert table.num_rows == BOUND  # every row up to the bound, not the preview's page
    expected = direct(
        service, f"select lifetime_value from {{t}} where {WHERE} order by lifetime_value desc limit {BOUND}"
    )
    assert [float(v) for v in table.column("lifetime_value").to_pylist()] == [float(v) for (v,) in expected]


def test_an_export_under_the_bound_holds_every_matching_row_and_is_not_cut(service: PortalService) -> None:
    narrow = [*FILTERS, Filter("lifetime_value", ">", "0")]
    (top,) = direct(
        service, f"select lifetime_value from {{t}} where {WHERE} order by 1 desc limit 1 offset 9"
    )[0]
    narrow.append(Filter("lifetime_value", ">=", str(top)))
    result, data, _ = exported(
        service, "csv", filters=narrow, columns=["customer_id", "lifetime_value"], order_by="customer_id"
    )
    ids = [row[0] for row in direct(
        service, f"select customer_id from {{t}} where {WHERE} and lifetime_value >= {top} order by customer_id"
    )]  # fmt: skip
    assert 10 <= len(ids) < BOUND and not result.cut and result.rows == result.total_rows == len(ids)
    table = pa_csv.read_csv(io.BytesIO(data))
    assert table.column_names == ["customer_id", "lifetime_value"]
    assert table.column("customer_id").to_pylist() == ids


def test_the_parquet_export_is_readable_and_holds_what_the_csv_holds(service: PortalService) -> None:
    kwargs: dict[str, Any] = {"filters": FILTERS, "order_by": "customer_id"}
    _, csv_data, _ = exported(service, "csv", **kwargs)
    result, parquet_data, _ = exported(service, "parquet", **kwargs)
    assert result.media_type == "application/vnd.apache.parquet" and result.extension == ".parquet"
    from_parquet = pq.read_table(io.BytesIO(parquet_data))
    assert from_parquet.num_rows == BOUND
    assert from_parquet.schema.field("lifetime_value").type == pa.decimal128(18, 2)  # the warehouse's types
    # The CSV read back as the Parquet file's types: the same rows, value for value.
    options = pa_csv.ConvertOptions(column_types=from_parquet.schema)
    from_csv = pa_csv.read_csv(io.BytesIO(csv_data), convert_options=options)
    assert from_csv.equals(from_parquet.cast(from_csv.schema))
    # and DuckDB reads the Parquet file too
    path = Path(str(service.settings.duckdb_path)).parent / "export.parquet"
    path.write_bytes(parquet_data)
    with duckdb.connect() as con:
        ids = [r[0] for r in con.execute(f"select customer_id from read_parquet('{path}')").fetchall()]
    expected = direct(
        service, f"select customer_id from {{t}} where {WHERE} order by customer_id limit {BOUND}"
    )
    assert ids == [r[0] for r in expected]


def test_an_export_is_one_recorded_read_saying_what_it_holds(service: PortalService) -> None:
    def reads() -> list[UsageEvent]:
        with service.sessions() as session:
            return list(session.scalars(sa.select(UsageEvent).where(UsageEvent.user == "exporter")))

    before = len(reads())
    result = export(service, PRODUCT, identity=Identity("exporter"), format="parquet", filters=FILTERS)
    b"".join(result.chunks)
    events = reads()
    assert len(events) == before + 1
    assert events[-1].rows == BOUND and events[-1].product == PRODUCT
    assert events[-1].detail["export"] == "parquet" and events[-1].detail["cut"] is True


def test_an_unknown_export_format_is_refused_naming_the_formats(service: PortalService) -> None:
    with pytest.raises(BadRequest, match="use one of csv, parquet"):
        export(service, PRODUCT, identity=ME, format="xlsx")


def test_the_summary_is_each_columns_aggregate_over_every_matching_row(service: PortalService) -> None:
    shown = preview(service, PRODUCT, identity=ME, filters=FILTERS, limit=5, summarize=True)
    assert shown.summary is not None and len(shown.rows) == 5  # the page is small, the summary is not
    by_column = {s.column: s for s in shown.summary}
    assert list(by_column) == shown.columns
    for column in (
        "lifetime_value",
        "preferred_channel",
        "first_order_date",
        "signed_up_at",
        "marketing_opt_in",
    ):
        (expected,) = direct(
            service,
            f"select count(*) - count({column}), count(distinct {column}), min({column}), max({column}) "
            f"from {{t}} where {WHERE}",
        )
        got = by_column[column]
        assert (got.nulls, got.distinct, got.min, got.max) == expected, column
    assert by_column["customer_id"].distinct == shown.total_rows  # the key: one a row, every row
    everyone = preview(service, PRODUCT, identity=ME, limit=5, summarize=True)
    assert everyone.summary is not None
    (prospects,) = direct(service, "select count(*) from {t} where last_order_date is null")[0]
    assert {s.column: s for s in everyone.summary}["last_order_date"].nulls == prospects > 0
