"""How Trino's rows become the record batches an export writes (no Trino needed: the rows are
what its client returns, Python values a page at a time)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from portal.warehouse.export import encoded
from portal.warehouse.trino import _batch

NAMES = ["id", "amount", "day", "note"]
PAGE_1 = [(1, Decimal("1.50"), dt.date(2024, 1, 1), "a"), (2, Decimal("2.25"), dt.date(2024, 1, 2), None)]
PAGE_2 = [(3, Decimal("3.00"), dt.date(2024, 1, 3), "c")]


def test_pages_become_batches_typed_as_the_first_and_write_one_parquet_file() -> None:
    first = _batch(NAMES, PAGE_1, None)
    assert first.schema.names == NAMES and first.schema.field("day").type == pa.date32()
    second = _batch(NAMES, PAGE_2, first.schema)
    assert second.schema == first.schema
    reader = pa.RecordBatchReader.from_batches(first.schema, iter([first, second]))
    table = pq.read_table(io.BytesIO(b"".join(encoded("parquet", reader))))
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("amount").to_pylist() == [Decimal("1.50"), Decimal("2.25"), Decimal("3.00")]


def test_no_rows_are_a_batch_of_the_names_and_a_csv_of_the_header() -> None:
    empty = _batch(NAMES, [], None)
    assert empty.num_rows == 0 and empty.schema.names == NAMES
    reader = pa.RecordBatchReader.from_batches(empty.schema, iter([empty]))
    assert b"".join(encoded("csv", reader)) == b"id,amount,day,note\n"


def test_columns_are_typed_as_trino_declares_them_even_when_the_first_page_is_null() -> None:
    from portal.warehouse.trino import arrow_type

    declared = [
        arrow_type(t) for t in ("bigint", "decimal(18,2)", "timestamp(6) with time zone", "varchar(10)")
    ]
    assert declared == [pa.int64(), pa.decimal128(18, 2), pa.timestamp("us", tz="UTC"), pa.string()]
    first = _batch(["n", "amount", "at", "note"], [(None, None, None, None)], None, declared)
    assert first.schema.types == declared  # all NULL on page one, typed all the same
    later = _batch(
        ["n", "amount", "at", "note"],
        [(7, Decimal("1.25"), dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "x")],
        first.schema,
    )
    assert later.column(1).to_pylist() == [Decimal("1.25")]
    # a type only values tell (an array), NULL on page one: text, so later values still fit
    unknown = _batch(["tags"], [(None,)], None, [arrow_type("array(varchar)")])
    assert unknown.schema.field("tags").type == pa.string()
    assert _batch(["tags"], [(["a", "b"],)], unknown.schema).column(0).to_pylist() == ["['a', 'b']"]
