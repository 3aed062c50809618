"""A result's record batches written as CSV or Parquet, chunk by chunk.

An export is the whole filtered result (up to the maximum rows), so it is never assembled as one
file in memory: each record batch the engine streams is written and its bytes handed on before
the next is read. Parquet keeps the warehouse's types (one row group a batch); CSV is text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

# format -> (media type, file extension)
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv", ".csv"),
    "parquet": ("application/vnd.apache.parquet", ".parquet"),
}
BATCH_ROWS = 16_384  # rows an engine hands over at a time: a few MB at most for a wide table


@dataclass
class Export:
    """A streamed export: what it holds is known before its first chunk is read."""

    format: str
    columns: list[str]
    rows: int  # rows the file holds
    total_rows: int  # rows the filters keep
    limit: int  # the bound it was cut at, if it was
    elapsed_s: float  # counting and the first chunk
    sql: str
    chunks: Iterator[bytes]

    @property
    def cut(self) -> bool:
        """Whether rows were left out: more rows matched than the maximum an export may hold."""
        return self.total_rows > self.rows

    @property
    def media_type(self) -> str:
        return EXPORT_FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        return EXPORT_FORMATS[self.format][1]


class _Drain:
    """A write-only file whose bytes are taken away as they come. `tell` counts every byte ever
    written: the Parquet footer records the row groups' offsets from it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        taken = b"".join(self._parts)
        self._parts.clear()
        return taken


def unwritable_columns(format: str, schema: pa.Schema) -> list[str]:
    """The columns `format` cannot hold: CSV has no lists, structs or maps."""
    if format != "csv":
        return []
    return [f.name for f in schema if pa.types.is_nested(f.type)]


def encoded(format: str, reader: pa.RecordBatchReader) -> Iterator[bytes]:
    """The reader's rows as `format`, a chunk per batch (the first holds the CSV header or the
    Parquet magic even when there are no rows); the reader is closed at the end, or when the
    consumer stops early."""
    sink = _Drain()
    try:
        writer: pq.ParquetWriter | pa_csv.CSVWriter
        if format == "parquet":
            writer = pq.ParquetWriter(sink, reader.schema)
        else:
            # The header as people write it (quoted only where it must be); Arrow quotes every name.
            header = io.StringIO()
            csv.writer(header, lineterminator="\n").writerow(reader.schema.names)
            sink.write(header.getvalue().encode())
            options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
            writer = pa_csv.CSVWriter(sink, reader.schema, write_options=options)
        for batch in reader:
            writer.write_batch(batch)
            chunk = sink.take()
            if chunk:
                yield chunk
        writer.close()
        tail = sink.take()  # Parquet's footer; with no rows, the CSV header
        if tail:
            yield tail
    finally:
        reader.close()
