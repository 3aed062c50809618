"""dbt's generic tests as ODCS quality rules, and back.

A test the ODCS library metrics say exactly (not_null, unique, accepted_values and
unique_combination_of_columns, without a `where`) becomes a library rule, which datacontract-cli
runs as such; any other (relationships, accepted_range, a test with a `where`) becomes a SQL rule
counting the rows that break it, `mustBe: 0`. Every rule is named by its dbt test and keeps the
test's arguments in a `dbtTest` custom property where the ODCS form alone would lose them, so a
contract read back gives the same tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from open_data_contract_standard.model import CustomProperty, DataQuality

# The ODCS dimension each test measures (ODCS's list: accuracy, completeness, conformity,
# consistency, coverage, timeliness, uniqueness).
DIMENSIONS = {
    "not_null": "completeness",
    "unique": "uniqueness",
    "unique_combination_of_columns": "uniqueness",
    "accepted_values": "conformity",
    "accepted_range": "conformity",
    "relationships": "consistency",
}
SUPPORTED_TESTS = tuple(DIMENSIONS)
DBT_TEST = "dbtTest"  # the custom property that keeps a SQL rule's dbt arguments


@dataclass(frozen=True)
class Rule:
    """One dbt generic test of a product: its name, column (None: the whole model), arguments
    as dbt takes them, its `where`, and for relationships the relation it reads (`schema.table`)."""

    test: str
    column: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    where: str | None = None
    target: str | None = None

    @property
    def id(self) -> str:
        """Stable across builds, unique within a contract (datacontract test --quality-id)."""
        parts = [self.test, self.column or "model"]
        if self.test == "relationships":
            parts.append(str(self.arguments.get("field", "")))
        if self.test == "unique_combination_of_columns":
            parts.extend(str(c) for c in self.arguments.get("combination_of_columns") or ())
        return "_".join(parts)


def rule_of_test(
    name: str, column: str | None, kwargs: Mapping[str, Any], config: Mapping[str, Any]
) -> Rule | None:
    """A dbt test node's rule, or None for a test ODCS cannot say (singular, custom generic)."""
    test = name.split(".")[-1]
    if test not in DIMENSIONS:
        return None
    arguments = {k: v for k, v in kwargs.items() if k not in ("model", "column_name")}
    where = config.get("where")
    return Rule(test=test, column=column, arguments=arguments, where=str(where) if where else None)


def to_quality(rule: Rule) -> DataQuality:
    base: dict[str, Any] = {
        "id": rule.id,
        "name": rule.test,
        "description": _describe(rule),
        "dimension": DIMENSIONS[rule.test],
        "severity": "error",
    }
    library = _library(rule)
    if library is not None:
        return DataQuality(**base, **library)
    kept = {"arguments": dict(rule.arguments), "where": rule.where, "target": rule.target}
    return DataQuality(
        **base,
        type="sql",
        query=_broken_rows_query(rule),
        mustBe=0,
        customProperties=[
            CustomProperty(property=DBT_TEST, value={k: v for k, v in kept.items() if v not in (None, {})})
        ],
    )


def from_quality(quality: DataQuality, column: str | None) -> Rule | None:
    """The rule a quality entry states, or None for one that is no dbt test the portal knows."""
    kept = next((p.value for p in quality.customProperties or [] if p.property == DBT_TEST), None)
    if quality.name in DIMENSIONS and isinstance(kept, dict):
        return Rule(
            test=quality.name,
            column=column,
            arguments=dict(kept.get("arguments") or {}),
            where=kept.get("where"),
            target=kept.get("target"),
        )
    arguments = quality.arguments or {}
    if quality.metric == "nullValues":
        return Rule("not_null", column)
    if quality.metric == "duplicateValues" and column is not None:
        return Rule("unique", column)
    if quality.metric == "duplicateValues" and arguments.get("properties"):
        return Rule(
            "unique_combination_of_columns", None, {"combination_of_columns": list(arguments["properties"])}
        )
    if quality.metric == "invalidValues" and arguments.get("validValues") is not None:
        values = list(arguments["validValues"])
        extra = {"quote": False} if values and not any(isinstance(v, str) for v in values) else {}
        return Rule("accepted_values", column, {"values": values, **extra})
    return None


def _library(rule: Rule) -> dict[str, Any] | None:
    if rule.where is not None:
        return None
    if rule.test == "not_null":
        return {"metric": "nullValues", "mustBe": 0}
    if rule.test == "unique":
        return {"metric": "duplicateValues", "mustBe": 0}
    if rule.test == "accepted_values":
        return {
            "metric": "invalidValues",
            "arguments": {"validValues": list(rule.arguments["values"])},
            "mustBe": 0,
        }
    if rule.test == "unique_combination_of_columns":
        columns = list(rule.arguments["combination_of_columns"])
        return {"metric": "duplicateValues", "arguments": {"properties": columns}, "mustBe": 0}
    return None


def _broken_rows_query(rule: Rule) -> str:
    """SELECT the number of rows breaking the rule; `{model}` is the product's table
    (datacontract-cli substitutes it)."""
    column = rule.column or ""
    where = f" and ({rule.where})" if rule.where else ""
    if rule.test == "not_null":
        return f"select count(*) from {{model}} where {column} is null{where}"
    if rule.test == "unique":
        return (
            f"select count(*) from (select {column} from {{model}} where {column} is not null{where} "
            f"group by {column} having count(*) > 1) as duplicates"
        )
    if rule.test == "accepted_values":
        values = ", ".join(_literal(v, rule.arguments.get("quote", True)) for v in rule.arguments["values"])
        return f"select count(*) from {{model}} where {column} not in ({values}){where}"
    if rule.test == "unique_combination_of_columns":
        columns = ", ".join(rule.arguments["combination_of_columns"])
        return (
            f"select count(*) from (select {columns} from {{model}} where true{where} "
            f"group by {columns} having count(*) > 1) as duplicates"
        )
    if rule.test == "accepted_range":
        bounds = []
        if rule.arguments.get("min_value") is not None:
            op = ">=" if rule.arguments.get("inclusive", True) else ">"
            bounds.append(f"{column} {op} {rule.arguments['min_value']}")
        if rule.arguments.get("max_value") is not None:
            op = "<=" if rule.arguments.get("inclusive", True) else "<"
            bounds.append(f"{column} {op} {rule.arguments['max_value']}")
        return f"select count(*) from {{model}} where not ({' and '.join(bounds) or 'true'}){where}"
    # relationships: a value with no row of that value in the referenced relation (NOT EXISTS,
    # not NOT IN, so a null in the referenced column does not hide every orphan).
    to_field = rule.arguments.get("field")
    return (
        f"select count(*) from {{model}} as child where child.{column} is not null{where} and not exists "
        f"(select 1 from {rule.target} as parent where parent.{to_field} = child.{column})"
    )


def _literal(value: Any, quote: Any) -> str:
    if quote is False:
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _describe(rule: Rule) -> str:
    subject = rule.column or "the table"
    when = f" (where {rule.where})" if rule.where else ""
    if rule.test == "not_null":
        text = f"{subject} is never null"
    elif rule.test == "unique":
        text = f"{subject} has no duplicate values"
    elif rule.test == "accepted_values":
        text = f"{subject} is one of {', '.join(str(v) for v in rule.arguments.get('values') or ())}"
    elif rule.test == "unique_combination_of_columns":
        text = f"({', '.join(rule.arguments.get('combination_of_columns') or ())}) is unique"
    elif rule.test == "accepted_range":
        low, high = rule.arguments.get("min_value"), rule.arguments.get("max_value")
        text = f"{subject} lies between {low if low is not None else '-inf'} and {high if high is not None else 'inf'}"
    else:
        text = f"every {subject} exists in {rule.arguments.get('to')}.{rule.arguments.get('field')}"
    return f"{text}{when} (dbt test {rule.test})"


def rules_sorted(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """The manifest's test order is not stable across parses; the contract's is."""
    return tuple(sorted(rules, key=lambda r: r.id))
