"""What an API client may leave out of a product spec, and how the portal fills it in.

The form asks for a primary key; the product brief's API call (`"source_query": "SELECT * FROM
..."`, no key) does not give one. Rather than refuse it, the portal proposes the first column of
the query's result that is unique and never null in the data as it is now, preferring id-like
columns (`id`, `*_id`, `*_key`). The guess is checked for real by the build: the key gets
`unique` and `not_null` tests, so a key that stops holding fails the build instead of
publishing duplicates. When no column qualifies the key stays empty and the creation is
refused with the form's own message ("primary_key is empty ...").
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from portal.auth.identity import Identity
from portal.creation import flow as creation
from portal.creation.spec import COLUMN_RE, ProductSpec
from portal.service import PortalService
from portal.warehouse import WarehouseError

# Columns checked for uniqueness in one query: the id-like ones, then the first few others.
MAX_CANDIDATES = 12


def _id_like(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_key"))


def infer_primary_key(service: PortalService, spec: ProductSpec, identity: Identity) -> tuple[str, ...]:
    """A one-column key that holds on the query's current result, or () when none does (or the
    spec has other problems, which the creation then reports)."""
    validation = creation.check(service, replace(spec, primary_key=()), identity)
    guard = validation.guard
    if guard is None or not guard.ok or not guard.normalized_sql or not validation.columns:
        return ()
    names = [name for name, _ in validation.columns if COLUMN_RE.match(name)]
    candidates = ([n for n in names if _id_like(n)] + [n for n in names if not _id_like(n)])[:MAX_CANDIDATES]
    if not candidates:
        return ()
    warehouse = service.warehouse(identity)
    counts: list[exp.Expr] = [exp.Count(this=exp.Star())]
    for name in candidates:
        column = exp.column(name, quoted=True)
        counts += [exp.Count(this=exp.Distinct(expressions=[column])), exp.Count(this=column)]
    query = exp.select(*counts).from_(
        exp.Subquery(
            this=exp.maybe_parse(guard.normalized_sql, dialect=warehouse.dialect),
            alias=exp.TableAlias(this=exp.to_identifier("candidate_keys")),
        )
    )
    try:
        row = warehouse.query(query.sql(dialect=warehouse.dialect)).iloc[0].tolist()
    except WarehouseError:
        return ()
    total = int(row[0])
    if total == 0:
        return ()  # every column is "unique" in an empty result: no evidence for a key
    for index, name in enumerate(candidates):
        distinct, non_null = int(row[1 + 2 * index]), int(row[2 + 2 * index])
        if distinct == non_null == total:
            return (name,)
    return ()


def complete(service: PortalService, spec: ProductSpec, identity: Identity) -> ProductSpec:
    """`spec` with the parts an API client may omit filled in (today: the primary key)."""
    if spec.primary_key:
        return spec
    return replace(spec, primary_key=infer_primary_key(service, spec, identity))
