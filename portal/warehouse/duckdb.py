"""The embedded warehouse: a DuckDB file opened read-only, per query (or, while a build writes
the file, the copy of it from before the build: portal/warehouse/snapshot.py).

Each query opens its own read-only connection with external access disabled and the
configuration locked, so a preview can neither write, nor read files or the network, nor
switch those protections back on. Connections are never held between operations: DuckDB lets
one process write a file only while no other process has it open, and `dbt build` (a
separate process) must be able to write the warehouse whenever the portal is idle. Within one
operation (a preview's columns, rows and count; a profile) `session()` shares one connection,
since opening the file is most of what a small query costs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from portal.warehouse.base import (
    ColumnInfo,
    QueryTimeout,
    Relation,
    RelationMissing,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)
from portal.warehouse.export import BATCH_ROWS
from portal.warehouse.snapshot import reading_copy

LOCKED_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    engine_name = "DuckDB"

    def __init__(self, path: Path, *, timeout_s: float, max_rows: int) -> None:
        super().__init__(timeout_s=timeout_s, max_rows=max_rows)
        self.path = Path(path)
        self._held = threading.local()  # the connection of the thread's current session()

    def status(self) -> str:
        if reading_copy(self.path) is not None:
            return f"DuckDB file {self.path} (a build is writing it: reads are served its copy from before the build)"
        return f"DuckDB file {self.path}"

    def table(self, relation: Relation) -> exp.Table:
        # The file is attached under its own stem, whatever database name dbt recorded, so
        # schema.name is the reliable address (a renamed or copied file still previews).
        return super().table(Relation(None, relation.schema, relation.name))

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if not self.path.exists():
            raise WarehouseUnavailable(
                f"The warehouse {self.path} has not been built yet. Run `make demo` to build the demo "
                "warehouse, or set PORTAL_DUCKDB_PATH to your DuckDB file."
            )
        copy = reading_copy(self.path)
        if copy is not None:  # a build is writing the file: read it as it was (warehouse/snapshot.py)
            try:
                return duckdb.connect(str(copy), read_only=True, config=dict(LOCKED_CONFIG))
            except duckdb.Error:
                pass  # the build has just ended and taken its copy away: the file is free again
        try:
            return duckdb.connect(str(self.path), read_only=True, config=dict(LOCKED_CONFIG))
        except duckdb.IOException as exc:
            raise WarehouseUnavailable(
                f"The warehouse {self.path} is busy: a dbt build is writing it, and it has left no copy "
                "for readers (the build runs outside the portal, or the file is larger than "
                f"PORTAL_DUCKDB_READ_COPY_MAX_MB). Try again when the build has finished. ({exc})"
            ) from exc

    @contextmanager
    def session(self) -> Iterator[None]:
        """One read-only connection for every statement inside, closed at the end."""
        if getattr(self._held, "con", None) is not None:  # nested: the outer session's
            yield
            return
        self._held.con = self._connect()
        try:
            yield
        finally:
            con, self._held.con = self._held.con, None
            con.close()

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        held = getattr(self._held, "con", None)
        if held is not None:
            yield held
            return
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    def _fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._connection() as con:
            return self._run(con, sql)

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._timed(con, self.timeout_s):
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return names, cursor.fetchall()

    @contextmanager
    def _timed(self, con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
        """Run the block with `con` interrupted after `seconds`; DuckDB's errors as the portal's."""
        # interrupt() is DuckDB's documented way to cancel a running query from another thread.
        timer = threading.Timer(max(seconds, 0.001), con.interrupt)
        timer.start()
        try:
            yield
        except duckdb.InterruptException as exc:
            raise QueryTimeout(
                f"The query ran longer than {self.timeout_s:g} s and was stopped. Ask for fewer rows or "
                "narrower filters, or raise PORTAL_QUERY_TIMEOUT_S."
            ) from exc
        except duckdb.CatalogException as exc:
            raise RelationMissing(
                f"{exc}. The model may not be built yet: run `dbt build` for it (or `make demo`)."
            ) from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB refused the query: {exc}") from exc
        finally:
            timer.cancel()

    def _record_batches(self, sql: str) -> pa.RecordBatchReader:
        """DuckDB's own stream of the result (a relation's Arrow reader computes batch by batch;
        an executed result's would copy every row first), on a connection of its own: the reader
        is read after this returns, maybe on another thread. The timeout bounds DuckDB's time
        over all batches, not the time the reader's consumer takes between them."""
        con = self._connect()
        started = time.monotonic()
        try:
            with self._timed(con, self.timeout_s):
                stream = con.sql(sql).to_arrow_reader(batch_size=BATCH_ROWS)
        except BaseException:
            con.close()
            raise
        spent = time.monotonic() - started

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal spent
            try:
                while True:
                    begun = time.monotonic()
                    with self._timed(con, self.timeout_s - spent):
                        try:
                            batch = stream.read_next_batch()
                        except StopIteration:
                            return
                    spent += time.monotonic() - begun
                    yield batch
            finally:
                stream.close()
                con.close()

        return pa.RecordBatchReader.from_batches(stream.schema, batches())

    def describe(self, sql: str) -> list[ColumnInfo]:
        described = self.query(f"DESCRIBE SELECT * FROM ({sql}) AS dry_run")
        return [
            ColumnInfo(str(name), str(kind))
            for name, kind in zip(described["column_name"], described["column_type"], strict=True)
        ]

    def columns(self, relation: Relation) -> list[ColumnInfo]:
        with self._connection() as con:
            rows = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [relation.schema, relation.name],
            ).fetchall()
        if not rows:
            raise RelationMissing(
                f"{relation} does not exist in {self.path}. Build it with `dbt build --select {relation.name}` "
                "(or `make demo` for the demo project)."
            )
        return [ColumnInfo(name, str(dtype)) for name, dtype in rows]
