"""What a query may read: the relations the SQL workspace (and a product's SQL) accepts, as an
analyst looks them up beside the editor, with their columns.

The list is the guard's own (`creation.flow.known_relations`), so nothing is listed that a query
would be refused for reading, and nothing it may read is missing: data products first, then the
other models, then the sources. Columns and types are dbt's catalog.json where it has the table
(the warehouse's names, in the table's order), else what the YAML documents. A big project
reads thousands (spellbook_dex: 11,704), so the list is made once per build and looked up by
`find`, never shown whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.creation.flow import known_relations
from portal.project.sync import is_data_product
from portal.service import PortalService

KIND_ORDER = {"data product": 0, "model": 1, "source": 2}


@dataclass(frozen=True)
class Readable:
    """One relation a query may read."""

    name: str  # as SQL writes it: a model by its name, a source as source.table
    kind: str  # "data product", "model" or "source"
    description: str
    columns: tuple[tuple[str, str | None], ...]  # (column, its type; None where nothing says)

    def select(self) -> str:
        """A query of every column, to start from."""
        named = ",\n  ".join(column for column, _ in self.columns) or "*"
        return f"select\n  {named}\nfrom {self.name}"


def readable(service: PortalService) -> list[Readable]:
    """Every relation a workspace query may read (see the module docstring), once per build:
    what the guard withholds (products not published) changes only with a new manifest."""
    return service.per_build(("readable",), lambda: _readable(service))


def find(relations: list[Readable], text: str, *, limit: int = 50) -> tuple[list[Readable], int]:
    """The first `limit` relations whose name holds `text` (any case; none given: the data
    products), in the list's order, and how many match in all."""
    wanted = text.strip().lower()
    matching = [r for r in relations if (wanted in r.name.lower() if wanted else r.kind == "data product")]
    return matching[:limit], len(matching)


def _readable(service: PortalService) -> list[Readable]:
    artifacts = service.artifacts()
    manifest, catalog = artifacts.manifest, artifacts.catalog
    found = []
    for relation in known_relations(service).relations():
        node = manifest.get(relation.unique_id)
        if node is None:
            continue
        if relation.kind == "source":
            kind = "source"
        else:
            product = is_data_product(node, service.settings.data_products_path)
            kind = "data product" if product else "model"
        table = catalog.get(node.unique_id) if catalog else None
        if table is not None and table.columns:
            ordered = sorted(table.columns.values(), key=lambda c: c.index)
            columns = tuple((c.name, c.type or None) for c in ordered)
        else:
            columns = tuple((c.name, c.data_type or None) for c in node.columns.values())
        found.append(Readable(relation.label, kind, node.description or "", columns))
    return sorted(found, key=lambda r: (KIND_ORDER[r.kind], r.name))


__all__ = ["Readable", "find", "readable"]
