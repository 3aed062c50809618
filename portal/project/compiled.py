"""Compiled SQL kept across the dbt runs that do not compile everything.

Column lineage (and what builds on it: inherited column descriptions, the review's column
lineage) reads each model's `compiled_code` from the manifest. Only a full `dbt build`/`compile`
writes it for every model: `dbt parse` writes none, and `dbt build --select x` only x's. The
portal runs exactly those (a creation parses the project, a refresh builds one product), so after
the first submission every other model would lose its column lineage until the next full build.

So before such a run we note every node's compiled SQL with what it was compiled from (the raw
code's checksum, the nodes it depends on and their relation names), and afterwards give it back
to each node that has none now and was compiled from the same things: the same inputs compile to
the same SQL. A node whose code or upstream relations changed stays without it, as dbt left it.

An audit build on Trino compiles through its own catalog (the run's Nessie branch, `wap_<run>`),
so its SQL names `"wap_r7"."silver"."orders"` where the project reads `"nessie"."silver"."orders"`:
`compiled_of(..., catalogs={"wap_r7": "nessie"})` reads it as compiled in the main catalog.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# What dbt writes on a node when it compiles it.
COMPILED_FIELDS = ("compiled", "compiled_code", "compiled_path", "extra_ctes", "extra_ctes_injected")


@dataclass(frozen=True)
class Compiled:
    """A node's compiled SQL and what it was compiled from."""

    inputs: tuple[Any, ...]
    fields: dict[str, Any]
    relation: str | None  # the node's own relation where it was compiled (`{{ this }}`)


def _inputs(node: Mapping[str, Any], relations: Mapping[str, str | None]) -> tuple[Any, ...]:
    depends = tuple(sorted((node.get("depends_on") or {}).get("nodes") or ()))
    return (
        (node.get("checksum") or {}).get("checksum"),
        depends,
        tuple(relations.get(d) for d in depends),
    )


def _relations(manifest: Mapping[str, Any]) -> dict[str, str | None]:
    found = {uid: n.get("relation_name") for uid, n in (manifest.get("nodes") or {}).items()}
    found.update({uid: s.get("relation_name") for uid, s in (manifest.get("sources") or {}).items()})
    return found


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None  # no manifest yet, or one being written: nothing to keep
    return data if isinstance(data, dict) else None


def _renamed(value: Any, catalogs: Mapping[str, str]) -> Any:
    """`value` (SQL, a relation name, dbt's extra CTEs) with each quoted catalog of `catalogs`
    named as its target: `"wap_r7".` becomes `"nessie".` (a run's catalog name is unique)."""
    if isinstance(value, str):
        for old, new in catalogs.items():
            value = value.replace(f'"{old}".', f'"{new}".')
        return value
    if isinstance(value, list):
        return [_renamed(item, catalogs) for item in value]
    if isinstance(value, dict):
        return {key: _renamed(item, catalogs) for key, item in value.items()}
    return value


def compiled_of(manifest_path: Path, *, catalogs: Mapping[str, str] | None = None) -> dict[str, Compiled]:
    """Every node of the manifest at `manifest_path` that has compiled SQL, by unique id; with
    `catalogs` (compiled in → read as), as if compiled in the catalogs it maps to."""
    manifest = _read(manifest_path)
    if manifest is None:
        return {}
    if catalogs:
        manifest = {
            "nodes": {
                uid: {
                    **node,
                    **{
                        f: _renamed(node[f], catalogs)
                        for f in (*COMPILED_FIELDS, "relation_name")
                        if f in node
                    },
                }
                for uid, node in (manifest.get("nodes") or {}).items()
            },
            "sources": {
                uid: {**source, "relation_name": _renamed(source.get("relation_name"), catalogs)}
                for uid, source in (manifest.get("sources") or {}).items()
            },
        }
    relations = _relations(manifest)
    return {
        uid: Compiled(
            _inputs(node, relations),
            {f: node[f] for f in COMPILED_FIELDS if f in node},
            node.get("relation_name"),
        )
        for uid, node in (manifest.get("nodes") or {}).items()
        if node.get("compiled_code")
    }


def carry_compiled(manifest_path: Path, known: Mapping[str, Compiled]) -> int:
    """Give each node of the manifest without compiled SQL the `known` SQL compiled from the same
    inputs; answers how many nodes got theirs back. The file is replaced atomically.

    `known` may come from another target (an audit build's): a node built into another schema
    compiles to the same SQL unless that SQL names its own relation."""
    if not known:
        return 0
    manifest = _read(manifest_path)
    if manifest is None:
        return 0
    relations = _relations(manifest)
    carried = 0
    for uid, node in (manifest.get("nodes") or {}).items():
        kept = known.get(uid)
        if node.get("compiled_code") or kept is None or kept.inputs != _inputs(node, relations):
            continue
        if (
            kept.relation != node.get("relation_name")
            and kept.relation
            and kept.relation in kept.fields["compiled_code"]
        ):
            continue  # it names where it was built (an audit schema): not this node's SQL
        node.update(kept.fields)
        carried += 1
    if carried:
        handle, temporary = tempfile.mkstemp(dir=manifest_path.parent, prefix=".manifest-", suffix=".json")
        with os.fdopen(handle, "wb") as out:
            out.write(orjson.dumps(manifest))
        os.replace(temporary, manifest_path)
    return carried


__all__ = ["COMPILED_FIELDS", "Compiled", "carry_compiled", "compiled_of"]
