"""A product's query tried on the read-only warehouse before anything is written: its columns with
their types and its first rows, or the warehouse's refusal pointed into what the user wrote (the
Create form's checks, and the SQL workspace's refusals)."""

from __future__ import annotations

import re

import pandas as pd

from portal.creation.spec import Problem, line_col
from portal.warehouse import Warehouse, WarehouseError

SAMPLE_ROWS = 10


def dry_run(warehouse: Warehouse, sql: str) -> tuple[list[tuple[str, str]] | None, pd.DataFrame]:
    """Columns with types, and the first rows, of the query run read-only on the warehouse."""
    sample = warehouse.query(f"SELECT * FROM ({sql}) AS dry_run LIMIT {SAMPLE_ROWS}")
    # None: the engine could not tell the types (no rows on Trino), so the product is generated
    # without an enforced contract.
    described = warehouse.describe(sql)
    return (None if described is None else [(c.name, c.type) for c in described]), sample


# DuckDB ends an error with the line of *our* rewritten query and carets under the culprit.
_EXCERPT = re.compile(r"\s*(?P<excerpt>LINE \d+:[^\n]*)\n(?P<pad> *)(?P<carets>\^+)\s*$")


def dry_run_problem(exc: WarehouseError, sql: str) -> Problem:
    """The warehouse's refusal, pointing into the user's SQL where the culprit can be found there.

    The excerpt the warehouse shows is of the rewritten query (other line numbers, quoted table
    names), so it is replaced by a position in what the user wrote: the first occurrence of the
    underlined text, when it occurs there.
    """
    text, position = str(exc), None
    match = _EXCERPT.search(text)
    if match:
        text = text[: match.start()]
        start = len(match["pad"])
        culprit = match["excerpt"][start : start + len(match["carets"])].strip()
        found = re.search(rf"(?<!\w){re.escape(culprit)}(?!\w)", sql, re.IGNORECASE) if culprit else None
        position = line_col(sql, found.start()) if found else None
    detail = " ".join(text.split()).rstrip(".")
    return Problem(
        "sql",
        f"{detail}. Fix what it names (a column, a type, a function's arguments), then try again.",
        position,
    )
