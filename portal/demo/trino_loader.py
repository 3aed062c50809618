"""Loads the demo silver tables into Iceberg tables on Trino (`<catalog>.<silver_schema>.*`).

The rows are the same as the embedded demo's (`portal.demo.silver.frames`, same scale, seed and
as_of), written through Trino itself: `CREATE OR REPLACE TABLE` with the column types the DuckDB
demo gets (bigint, double, varchar, boolean, timestamp(6)), then one `INSERT` per batch that unpacks a JSON literal.
Going through Trino (rather than writing Iceberg files with pyiceberg) needs nothing but the
running stack: the Nessie catalog type has no pyiceberg client, and Trino writes the Iceberg
metadata and commits to Nessie exactly as dbt's own writes do.

Run it: `python -m portal load-trino --scale 0.02` (reads PORTAL_TRINO_* like the portal).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
import trino

from portal.demo.silver import TABLES, frames
from portal.errors import Unavailable
from portal.settings import Settings
from portal.warehouse.trino import service_connection

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The most characters of JSON per INSERT statement: Trino refuses statements longer than
# `query.max-length` (1,000,000 characters by default), and the SQL around the JSON needs room.
BATCH_CHARS = 900_000


class LoaderError(Unavailable):
    """The load could not be done; the message says why and what to do."""


def trino_type(series: pd.Series) -> str:
    """The Trino column type for a pandas column, matching what DuckDB infers for the demo."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp(6)"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "varchar"
    raise LoaderError(f"column {series.name!r} has a type the loader does not map: {dtype}")


def _json_value(value: Any, sql_type: str) -> Any:
    """One value as it travels in the JSON batch (timestamps as text, cast back in SQL)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if sql_type == "boolean":
        return bool(value)
    if sql_type == "bigint":
        return int(value)
    if sql_type == "double":
        number = float(value)
        if math.isinf(number):
            raise LoaderError("infinite values cannot be loaded")
        return number
    if sql_type == "timestamp(6)":
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(value)


def json_batches(frame: pd.DataFrame, types: Sequence[str], max_chars: int = BATCH_CHARS) -> Iterator[str]:
    """The rows of `frame` as JSON arrays of arrays, each at most `max_chars` long (quotes doubled)."""
    columns = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    batch: list[str] = []
    size = 2
    for i in range(len(frame)):
        row = json.dumps(
            [_json_value(col[i], t) for col, t in zip(columns, types, strict=True)],
            separators=(",", ":"),
            allow_nan=False,
        )
        cost = len(row) + row.count("'") + 1  # single quotes are doubled in the SQL literal
        if cost + 2 > max_chars:
            raise LoaderError(f"row {i} alone is longer than {max_chars} characters of SQL")
        if batch and size + cost > max_chars:
            yield "[" + ",".join(batch) + "]"
            batch, size = [], 2
        batch.append(row)
        size += cost
    if batch:
        yield "[" + ",".join(batch) + "]"


def insert_sql(target: str, names: Sequence[str], types: Sequence[str], payload: str) -> str:
    """An INSERT that unpacks one JSON string literal into typed rows.

    One string literal per batch is far cheaper for Trino to parse and plan than thousands of
    VALUES tuples. Timestamps travel as text (JSON has no timestamp) and are cast back here.
    """
    row_type = ", ".join(
        f'"{n}" {"varchar" if t == "timestamp(6)" else t}' for n, t in zip(names, types, strict=True)
    )
    select = ", ".join(
        f'CAST("{n}" AS timestamp(6))' if t == "timestamp(6)" else f'"{n}"'
        for n, t in zip(names, types, strict=True)
    )
    quoted = "'" + payload.replace("'", "''") + "'"
    return (
        f"INSERT INTO {target} SELECT {select} "
        f"FROM UNNEST(CAST(json_parse({quoted}) AS array(row({row_type}))))"
    )


def _check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise LoaderError(f"{kind} {name!r} is not a plain SQL name: use letters, digits and _.")
    return name


def connect(settings: Settings, *, catalog: str | None = None) -> trino.dbapi.Connection:
    return service_connection(settings, catalog=catalog)


def execute(cursor: trino.dbapi.Cursor, sql: str) -> list[list[Any]]:
    cursor.execute(sql)
    return cursor.fetchall()


def load_frames(
    cursor: trino.dbapi.Cursor,
    tables: dict[str, pd.DataFrame],
    *,
    catalog: str,
    schema: str,
    batch_chars: int = BATCH_CHARS,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, int]:
    """Replace `<catalog>.<schema>.<name>` with each frame; returns the row count loaded per table."""
    _check_name("catalog", catalog)
    _check_name("schema", schema)
    execute(cursor, f'CREATE SCHEMA IF NOT EXISTS "{catalog}"."{schema}"')
    counts: dict[str, int] = {}
    for name, frame in tables.items():
        _check_name("table", name)
        for column in frame.columns:
            _check_name("column", str(column))
        types = [trino_type(frame[c]) for c in frame.columns]
        target = f'"{catalog}"."{schema}"."{name}"'
        columns_sql = ", ".join(f'"{c}" {t}' for c, t in zip(frame.columns, types, strict=True))
        started = time.perf_counter()
        execute(cursor, f"CREATE OR REPLACE TABLE {target} ({columns_sql}) WITH (format = 'PARQUET')")
        names = [str(c) for c in frame.columns]
        for payload in json_batches(frame, types, batch_chars):
            execute(cursor, insert_sql(target, names, types, payload))
        loaded = int(execute(cursor, f"SELECT count(*) FROM {target}")[0][0])
        if loaded != len(frame):
            raise LoaderError(f"{target} has {loaded} rows after the load, expected {len(frame)}.")
        counts[name] = loaded
        say(f"{target}: {loaded:,} rows in {time.perf_counter() - started:.1f} s")
    return counts


def load_silver(
    settings: Settings,
    *,
    scale: float | None = None,
    seed: int | None = None,
    as_of: dt.date | None = None,
    catalog: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, int]:
    """Generate the demo silver data and load it into `<catalog>.<silver_schema>` on Trino."""
    tables = frames(
        scale=settings.demo_scale if scale is None else scale,
        seed=settings.demo_seed if seed is None else seed,
        as_of=as_of,
    )
    assert tuple(tables) == TABLES
    catalog = catalog or settings.trino_catalog
    try:
        with connect(settings, catalog=catalog) as con:
            return load_frames(con.cursor(), tables, catalog=catalog, schema=settings.silver_schema, say=say)
    except trino.exceptions.TrinoUserError as exc:
        raise LoaderError(f"Trino refused the load: {exc.message}") from exc
    except (trino.exceptions.HttpError, OSError) as exc:
        raise LoaderError(
            f"Trino at {settings.trino_host}:{settings.trino_port} did not answer ({exc}). "
            "Start the local stack with `make stack-up`."
        ) from exc
