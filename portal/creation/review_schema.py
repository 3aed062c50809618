"""What a proposed change to a data product does to its columns and its contract, for its reviewer.

`schema_diff` compares the columns the warehouse reports for the published and the proposed
version; `contract_changes` compares what the two dbt YAML files declare (enforcement, primary key,
constraints, tests, data types), one sentence per change. Nothing here reads a row or runs SQL: it
is given columns and YAML text, so it stays apart from the data diff in `review_diff`, which does.
`by_name` and `type_text` are that diff's too, so both agree on which columns are one column and
which changed type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import yaml

from portal.warehouse.base import ColumnInfo

Change = Literal["added", "removed", "retyped", "unchanged"]


@dataclass(frozen=True)
class ColumnChange:
    name: str
    change: Change
    before_type: str | None
    after_type: str | None


@dataclass(frozen=True)
class SchemaDiff:
    columns: list[ColumnChange]
    contract: list[str] = field(default_factory=list)  # sentences, one per change of the contract

    @property
    def added(self) -> list[str]:
        return [c.name for c in self.columns if c.change == "added"]

    @property
    def removed(self) -> list[str]:
        return [c.name for c in self.columns if c.change == "removed"]

    @property
    def retyped(self) -> list[str]:
        return [c.name for c in self.columns if c.change == "retyped"]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "added": self.added, "removed": self.removed, "retyped": self.retyped}


def type_text(text: Any) -> str:
    """A type compared without case or spacing: `DECIMAL(18, 2)` is `decimal(18,2)`."""
    return re.sub(r"\s*([(),])\s*", r"\1", " ".join(str(text or "").lower().split()))


def by_name(columns: Sequence[ColumnInfo]) -> dict[str, ColumnInfo]:
    """Columns by lower-case name, since engines differ on case (Trino lowercases, DuckDB keeps)."""
    found: dict[str, ColumnInfo] = {}
    for column in columns:
        found.setdefault(column.name.lower(), column)
    return found


def schema_diff(
    before: Sequence[ColumnInfo] | None,
    after: Sequence[ColumnInfo],
    *,
    before_yml: str | None = None,
    after_yml: str | None = None,
) -> SchemaDiff:
    """Each column in `after`'s order, then the removed ones (`before` None: a new product, every
    column added), and the contract changes between the two YAML texts."""
    old, new = by_name(before or ()), by_name(after)
    changes = []
    for lower, column in new.items():
        prior = old.get(lower)
        if prior is None:
            changes.append(ColumnChange(column.name, "added", None, column.type))
        else:
            change: Change = "unchanged" if type_text(prior.type) == type_text(column.type) else "retyped"
            changes.append(ColumnChange(column.name, change, prior.type, column.type))
    changes += [ColumnChange(c.name, "removed", c.type, None) for low, c in old.items() if low not in new]
    return SchemaDiff(changes, contract_changes(before_yml, after_yml))


def contract_changes(before_yml: str | None, after_yml: str | None) -> list[str]:
    """What the proposed YAML changes in the contract, one sentence each (none when neither text is
    given); a missing or unreadable text is one sentence saying so, never an exception."""
    if before_yml is None and after_yml is None:
        return []
    before, problem = _model(before_yml, "published")
    after, problem = (None, problem) if problem else _model(after_yml, "proposed")
    if problem or before is None or after is None:
        return [problem or "The contract was not compared"]
    said = []
    if _enforced(before) != _enforced(after):
        said.append(
            "The contract is now enforced: the build fails when a column's name or type differs from the YAML"
            if _enforced(after)
            else "The contract is no longer enforced: columns may change name or type without a failing build"
        )
    said += _key_change(_model_key(before), _model_key(after))
    old_columns = _yml_columns(before)
    nodes = [(f"`{c['name']}`", old_columns.get(lower), c) for lower, c in _yml_columns(after).items()]
    for subject, prior, node in [("The model", before, after), *nodes]:
        old, new, model = _mapping(prior).get("data_type"), node.get("data_type"), node is after
        if prior is not None and type_text(old) != type_text(new):  # a new column's: the schema diff's
            said.append(f"{subject}'s declared data_type changes from {old or '(none)'} to {new or '(none)'}")
        said += _changes("constraint", subject, _constraints(prior or {}, model), _constraints(node, model))
        said += _changes("test", subject, _tests(prior or {}), _tests(node))
    return said


def _model(text: str | None, which: str) -> tuple[Mapping[str, Any] | None, str | None]:
    """The first model a product's YAML declares (a product's file holds one), or why there is none."""
    if text is None:
        return None, f"The {which} version has no YAML, so the contract was not compared"
    try:
        document = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or type(exc).__name__
        return None, f"The {which} YAML does not parse ({reason}{where}), so the contract was not compared"
    found = [m for m in _items(_mapping(document).get("models")) if isinstance(m, Mapping)]
    if not found:
        return None, f"The {which} YAML declares no model, so the contract was not compared"
    return found[0], None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _enforced(model: Mapping[str, Any]) -> bool:
    contract = _mapping(_mapping(model.get("config")).get("contract")) or _mapping(model.get("contract"))
    return contract.get("enforced") is True


def _yml_columns(model: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    columns: dict[str, Mapping[str, Any]] = {}
    for column in _items(model.get("columns")):
        if isinstance(column, Mapping) and isinstance(column.get("name"), str):
            columns.setdefault(column["name"].lower(), column)
    return columns


def _model_key(model: Mapping[str, Any]) -> tuple[str, ...] | None:
    for constraint in _items(model.get("constraints")):
        if _mapping(constraint).get("type") == "primary_key":
            return tuple(str(c) for c in _items(constraint.get("columns")))
    return None


def _key_change(before: tuple[str, ...] | None, after: tuple[str, ...] | None) -> list[str]:
    if before == after:
        return []
    if before is None or after is None:
        verb = "declares" if before is None else "no longer declares"
        return [f"The model {verb} the primary key ({', '.join(after or before or ())})"]
    return [f"The primary key changes from ({', '.join(before)}) to ({', '.join(after)})"]


def _constraints(node: Mapping[str, Any], model: bool) -> dict[str, list[str]]:
    """Each constraint by its label (`not_null`, `check (x > 0)`, `unique (a, b)`). The model's
    primary key is left out: `_key_change` says that in one sentence."""
    labels: dict[str, list[str]] = {}
    for constraint in map(_mapping, _items(node.get("constraints"))):
        kind = constraint.get("type")
        if kind and not (model and kind == "primary_key"):
            detail = constraint.get("expression") or ", ".join(map(str, _items(constraint.get("columns"))))
            labels[f"{kind} ({detail})" if detail else str(kind)] = []
    return labels


_PHRASES = {
    "test": ("{} gains test {}", "{} loses test {}", "{}'s test {} changes"),
    "constraint": ("{} gains a {} constraint", "{} loses its {} constraint", "{}'s {} constraint changes"),
}


def _changes(noun: str, subject: str, before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Sentences for what `after` has that `before` lacks, the reverse, and what both have, changed."""
    gains, loses, changes = _PHRASES[noun]
    said = [gains.format(subject, name) for name in after if name not in before]
    said += [loses.format(subject, name) for name in before if name not in after]
    return said + [changes.format(subject, n) for n in after if before.get(n, after[n]) != after[n]]


def _tests(node: Mapping[str, Any]) -> dict[str, list[str]]:
    """A node's tests by name (`data_tests`, or the older `tests`), with their arguments as text."""
    found: dict[str, list[str]] = {}
    for test in _items(node.get("data_tests")) + _items(node.get("tests")):
        name, body = (
            next(iter(test.items())) if isinstance(test, Mapping) and len(test) == 1 else (test, None)
        )
        found.setdefault(str(name), []).append(json.dumps(body, sort_keys=True, default=str))
    return {name: sorted(bodies) for name, bodies in found.items()}
