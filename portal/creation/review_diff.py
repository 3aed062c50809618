"""What a proposed change to a data product does to its rows, next to its published version.

`data_diff` compares the rows of the published relation with the proposed (audit) one, by primary
key when there is a usable one, else as whole rows. Every count runs in the warehouse and every
sample has a LIMIT, so a diff costs a few statements whatever the tables' size, and every name
reaches SQL as a quoted sqlglot identifier rendered in the warehouse's own dialect. The schema and
contract diff, which needs no warehouse, is in `review_schema`; columns are matched and retyped
here by its `by_name` and `type_text`, so the two diffs never disagree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlglot.errors
from sqlglot import exp

from portal.creation.review_schema import by_name, type_text
from portal.warehouse.base import ColumnInfo, Relation, Warehouse, all_of


@dataclass(frozen=True)
class DataDiff:
    before: str | None  # the published relation; None for a new product
    after: str
    key: list[str]  # what rows were matched on; empty when they were compared whole
    compared: list[str]  # the non-key columns compared
    left_out: list[str]  # columns of one version only
    notes: list[str]
    rows_before: int
    rows_after: int
    added: int | None
    removed: int | None
    changed: int | None  # None without a key: a changed row is then one removed and one added
    unchanged: int | None
    samples: list[dict[str, Any]]

    @property
    def note(self) -> str | None:
        return " ".join(self.notes) or None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "note": self.note}


# rows_before, rows_after, added, removed, changed, unchanged, samples
_Counted = tuple[int, int, int | None, int | None, int | None, int | None, list[dict[str, Any]]]
_T = exp.DataType.Type
_UNSORTABLE = {_T.MAP, _T.JSON, _T.JSONB, _T.OBJECT, _T.VARIANT}  # Trino cannot ORDER BY these


@dataclass(frozen=True)
class _Pair:
    """A column of both versions; `as_text` when its type changed, so that any engine can compare
    the two sides (Trino refuses `varchar = bigint`)."""

    before: ColumnInfo
    after: ColumnInfo
    as_text: bool = False

    def of(self, alias: str) -> ColumnInfo:
        return self.before if alias == "b" else self.after


def _json_value(value: Any) -> Any:
    """A value as JSON carries it: text for dates, times and decimals, None for NULL and NaN."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value.hex() if isinstance(value, bytes) else str(value)  # Decimal, UUID, infinities


@dataclass(frozen=True)
class _Versions:
    """The versions as aliased tables (`b` the published, `a` the proposed) and the statements over
    them, rendered in the warehouse's dialect; every name is a quoted identifier."""

    warehouse: Warehouse
    tables: dict[str, exp.Expr]
    keys: list[_Pair]
    limit: int

    def ref(self, alias: str, column: ColumnInfo, as_text: bool = False) -> exp.Expression:
        ref = exp.column(column.name, table=alias, quoted=True)
        return exp.cast(ref, "varchar") if as_text else ref

    def side(self, alias: str, pair: _Pair) -> exp.Expression:
        return self.ref(alias, pair.of(alias), pair.as_text)

    def table(self, alias: str) -> exp.Expr:
        return self.tables[alias].copy()

    def select(self, alias: str, pairs: Sequence[_Pair]) -> exp.Select:
        """The pairs' columns of one version, each named as there; `1` for none (to count rows)."""
        items = [self.side(alias, p).as_(p.of(alias).name, quoted=True) for p in pairs]
        return exp.select(*(items or [exp.Literal.number(1)])).from_(self.table(alias))

    def typed(self, column: ColumnInfo, kinds: Collection[object]) -> bool:
        try:
            return exp.DataType.build(column.type, dialect=self.warehouse.dialect).this in kinds
        except sqlglot.errors.SqlglotError:
            return False

    def counts(self, **queries: exp.Query) -> dict[str, int]:
        """Each query's number of rows, in one statement."""
        star = exp.Count(this=exp.Star())
        counts = [
            exp.select(star.copy()).from_(q.subquery("d")).subquery().as_(n) for n, q in queries.items()
        ]
        frame = self.warehouse.query(exp.select(*counts).sql(dialect=self.warehouse.dialect))
        return {name: int(frame.iloc[0, i]) for i, name in enumerate(queries)}

    def rows(
        self, query: exp.Select, cells: Sequence[tuple[exp.Expression, ColumnInfo | None]]
    ) -> list[list[Any]]:
        """Up to `limit` rows of `query` (FROM, WHERE, ORDER BY) selecting `cells`. Integers travel as
        text, read back as int: pandas makes a column with a NULL float (2**53 + 1 back as 2**53)."""
        if self.limit < 1:
            return []
        whole = [c is not None and self.typed(c, exp.DataType.INTEGER_TYPES) for _, c in cells]
        items = [exp.cast(e, "varchar") if w else e for (e, _), w in zip(cells, whole, strict=True)]
        query = query.select(*(e.as_(f"v{i}", quoted=True) for i, e in enumerate(items))).limit(self.limit)
        frame = self.warehouse.query(query.sql(dialect=self.warehouse.dialect))
        return [
            [int(v) if w and isinstance(v, str) else _json_value(v) for v, w in zip(row, whole, strict=True)]
            for row in frame.itertuples(index=False, name=None)
        ]

    def one_sided(
        self, kind: str, alias: str, query: exp.Select, source: str, columns: list[ColumnInfo]
    ) -> list[dict[str, Any]]:
        """Sample rows of one version, FROM and WHERE `query` (the rows' table aliased `source`)."""
        order = [self.ref(source, p.of(alias)) for p in self.keys]
        order = order or [self.ref(source, c) for c in columns if not self.typed(c, _UNSORTABLE)]
        samples = []
        for row in self.rows(query.order_by(*order), [(self.ref(source, c), c) for c in columns]):
            values = dict(zip([c.name for c in columns], row, strict=True))
            sides = (values, None) if alias == "b" else (None, values)
            key = {p.of(alias).name: values[p.of(alias).name] for p in self.keys}
            samples.append({"change": kind, "key": key, "before": sides[0], "after": sides[1]})
        return samples


def data_diff(
    warehouse: Warehouse,
    before: Relation | None,
    after: Relation,
    *,
    key: Sequence[str] = (),
    sample: int = 10,
) -> DataDiff:
    """Rows added, removed and changed from `before` (None: a new product) to `after`, matched on
    `key` when each key column is in both versions, else compared whole; up to `sample` example
    rows of each kind. A WarehouseError is the caller's to show."""
    key = (key,) if isinstance(key, str) else key  # one column's name, not its letters
    with warehouse.session():
        new_columns = warehouse.columns(after)
        old_columns = new_columns if before is None else warehouse.columns(before)
        old, new = by_name(old_columns), by_name(new_columns)
        pairs = [
            _Pair(old[n], c, type_text(old[n].type) != type_text(c.type)) for n, c in new.items() if n in old
        ]
        left_out = [c.name for n, c in new.items() if n not in old] + [
            c.name for n, c in old.items() if n not in new
        ]
        shared = {p.after.name.lower(): p for p in pairs}
        missing = [k for k in key if k.lower() not in shared]
        keys = [] if missing else [shared[k] for k in dict.fromkeys(k.lower() for k in key)]
        compared = [p for p in pairs if p not in keys]
        # A new product is compared with an empty published version of the same columns.
        empty = exp.select("*").from_(warehouse.table(after)).where(exp.false())
        tables: dict[str, exp.Expr] = {
            "a": warehouse.table(after).as_(exp.to_identifier("a", quoted=True)),
            "b": warehouse.table(before).as_(exp.to_identifier("b", quoted=True))
            if before is not None
            else empty.subquery(exp.to_identifier("b", quoted=True)),
        }
        v = _Versions(warehouse, tables, keys, max(0, min(sample, warehouse.max_rows)))
        if before is None:
            notes = ["No published version: every row is new."]
        else:
            notes = _notes(left_out, [p.after.name for p in pairs if p.as_text], key, missing)
        if keys:
            counted = _by_key(v, compared, (old_columns, new_columns), notes)
        else:
            counted = _whole_rows(v, pairs, notes)
    return DataDiff(
        str(before) if before else None,
        str(after),
        [p.after.name for p in keys],
        [p.after.name for p in compared],
        left_out,
        notes,
        *counted,
    )


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _notes(left_out: list[str], retyped: list[str], key: Sequence[str], missing: list[str]) -> list[str]:
    """Why the comparison is narrower than the two versions."""
    notes = [f"Left out of the comparison (in one version only; see the schema diff): {_names(left_out)}."]
    notes = notes[: len(left_out)]
    if retyped:
        notes.append(f"Compared as text, since their type changed: {_names(retyped)}.")
    if not key:
        notes.append(
            "No primary key: rows compared whole; declare a primary_key constraint to see changed rows."
        )
    elif missing:
        notes.append(f"The key column(s) {_names(missing)} are not in both versions: rows compared whole.")
    return notes


def _by_key(
    v: _Versions, compared: list[_Pair], columns: tuple[list[ColumnInfo], list[ColumnInfo]], notes: list[str]
) -> _Counted:
    """Distinct keys of one version only, and keys of both whose rows differ in a compared column,
    NULL-safely: NULL -> value is a change, NULL -> NULL is none."""
    match = all_of([exp.NullSafeEQ(this=v.side("b", p), expression=v.side("a", p)) for p in v.keys])
    assert match is not None  # called with a key
    flags = [exp.NullSafeNEQ(this=v.side("b", p), expression=v.side("a", p)) for p in compared]
    # Some column differs: not all are the same (a balanced AND, see `all_of`; never NULL).
    same = all_of([exp.NullSafeEQ(this=v.side("b", p), expression=v.side("a", p)) for p in compared])
    differs = exp.Not(this=exp.paren(same)) if same is not None else exp.false()
    both = exp.select().from_(v.table("a")).join(v.table("b"), on=match, join_type="inner").where(differs)
    twice = exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))
    keys = {alias: v.select(alias, v.keys) for alias in "ab"}
    n = v.counts(
        rows_before=v.select("b", []),
        rows_after=v.select("a", []),
        added=exp.except_(keys["a"], keys["b"]),
        removed=exp.except_(keys["b"], keys["a"]),
        common=exp.intersect(keys["a"], keys["b"]),
        changed=both.copy().select(*(v.side("a", p) for p in v.keys)).distinct(),
        dup_before=keys["b"].group_by(*(v.side("b", p) for p in v.keys)).having(twice.copy()),
        dup_after=keys["a"].group_by(*(v.side("a", p) for p in v.keys)).having(twice),
    )
    if n["dup_before"] or n["dup_after"]:
        notes.append(
            f"The key is not unique ({n['dup_before']:,} duplicated keys in the published version, "
            f"{n['dup_after']:,} in the proposed one): counts are of distinct keys."
        )
    samples = []
    for kind, alias, other, described in (("added", "a", "b", columns[1]), ("removed", "b", "a", columns[0])):
        lacks = exp.Not(this=exp.Exists(this=exp.select("1").from_(v.table(other)).where(match.copy())))
        samples += v.one_sided(kind, alias, exp.select().from_(v.table(alias)).where(lacks), alias, described)
    shown = [*v.keys, *compared]
    cells = [(v.ref(alias, p.of(alias)), p.of(alias)) for alias in "ba" for p in shown]
    order = [v.side("a", p) for p in v.keys]
    for row in v.rows(both.order_by(*order), [*cells, *((f, None) for f in flags)]) if compared else []:
        old, new, differ = row[: len(shown)], row[len(shown) : 2 * len(shown)], row[2 * len(shown) :]
        samples.append(
            {
                "change": "changed",
                "key": {p.after.name: new[i] for i, p in enumerate(v.keys)},
                "before": {p.before.name: x for p, x in zip(shown, old, strict=True)},
                "after": {p.after.name: x for p, x in zip(shown, new, strict=True)},
                "columns": [p.after.name for p, flag in zip(compared, differ, strict=True) if flag],
            }
        )
    return _counted(n, n["changed"], n["common"] - n["changed"], samples)


def _whole_rows(v: _Versions, pairs: list[_Pair], notes: list[str]) -> _Counted:
    """Rows as multisets over the shared columns: what one version holds more often than the other."""
    if not pairs:
        notes.append("The versions share no column, so their rows could not be compared.")
        n = v.counts(rows_before=v.select("b", []), rows_after=v.select("a", []))
        return _counted(n, None, None, [])
    more = {
        a: exp.except_(v.select(a, pairs), v.select(b, pairs), distinct=False)
        for a, b in (("a", "b"), ("b", "a"))
    }
    n = v.counts(
        rows_before=v.select("b", []), rows_after=v.select("a", []), added=more["a"], removed=more["b"]
    )
    samples = []
    for kind, alias in (("added", "a"), ("removed", "b")):
        # The difference's columns are named as in `alias`; a retyped one was cast to text there.
        columns = [ColumnInfo(p.of(alias).name, "varchar") if p.as_text else p.of(alias) for p in pairs]
        samples += v.one_sided(kind, alias, exp.select().from_(more[alias].subquery("d")), "d", columns)
    return _counted(n, None, n["rows_after"] - n["added"], samples)


def _counted(n: dict[str, int], changed: int | None, unchanged: int | None, samples: list[Any]) -> _Counted:
    return n["rows_before"], n["rows_after"], n.get("added"), n.get("removed"), changed, unchanged, samples
