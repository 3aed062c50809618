"""Trino's file-based access rules for restricted tables: who may SELECT them, written for the
coordinator to reload (its `security.refresh-period`), so a grant opens a table and its end closes it.

The generated file is the base rules (catalogs, impersonation, ...) with table rules in front:
for each restricted table, SELECT for the portal's own user (it builds them), the owning team (as
a Trino group, when the cluster has a group provider) and each grantee, then no privilege for
anyone else on it; after them the base's own table rules, else a rule that leaves every other
table as it was (Trino denies what no table rule matches once there are any).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVERY_PRIVILEGE = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]


@dataclass(frozen=True)
class RestrictedTable:
    catalog: str
    schema: str
    table: str
    owner_group: str | None
    readers: tuple[str, ...]  # users with a live grant


def _exactly(name: str) -> str:
    """Trino matches rules as regular expressions over the whole name: a name matches only itself."""
    return re.escape(name)


def render_rules(base: Mapping[str, Any], tables: Iterable[RestrictedTable], *, service_user: str) -> dict:
    rules: list[dict[str, Any]] = [{"user": _exactly(service_user), "privileges": EVERY_PRIVILEGE}]
    for t in sorted(tables, key=lambda t: (t.catalog, t.schema, t.table)):
        where = {"catalog": _exactly(t.catalog), "schema": _exactly(t.schema), "table": _exactly(t.table)}
        if t.owner_group:
            rules.append({"group": _exactly(t.owner_group), **where, "privileges": ["SELECT"]})
        rules.extend({"user": _exactly(u), **where, "privileges": ["SELECT"]} for u in sorted(set(t.readers)))
        rules.append({**where, "privileges": []})
    rendered = dict(base)
    rendered["tables"] = rules + list(base.get("tables") or [{"privileges": EVERY_PRIVILEGE}])
    return rendered


def write_rules(path: Path, rules: Mapping[str, Any]) -> bool:
    """Write `rules` to `path` atomically (Trino never reads half a file); False when unchanged,
    so the coordinator's reload sees a new file only when something changed."""
    text = json.dumps(rules, indent=2, sort_keys=False) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".rules-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temporary, path)
    return True


def read_base(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no JSON object of Trino access rules.")
    return data


__all__ = ["EVERY_PRIVILEGE", "RestrictedTable", "read_base", "render_rules", "write_rules"]
