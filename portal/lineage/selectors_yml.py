"""A project's named selectors (its selectors.yml, which dbt copies into the manifest's `selectors`):
each definition read into the selector expressions of `selector_spec`, the way dbt-core's
`graph/cli.py` (`parse_from_definition`) reads them for `dbt ls --selector NAME`, and the default
selector `dbt ls` applies when given no --select or --exclude.

A definition is a selector string (`"+tag:nightly"`, one part: no spaces or commas), a one-key mapping
(`{tag: nightly}`), a mapping with `method` and `value` (and `parents`, `parents_depth`, `children`,
`children_depth`, `childrens_parents`, `indirect_selection`, `exclude`), `method: selector` naming a
selector defined before it, or `union:`/`intersection:` over a list of definitions, one of which may
be `{exclude: [...]}`. The manifest holds them as dbt normalised them: strings as mappings, earlier
selectors copied in. Both forms read the same here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from portal.lineage.errors import SelectorError, UnknownSelectorError
from portal.lineage.selector_spec import (
    INDIRECT_SELECTIONS,
    Combination,
    Criterion,
    Expression,
    depth_of,
    method_of,
    parse_criterion,
)


def default_selector(selectors: Mapping[str, Any]) -> str | None:
    """The name of the selector marked `default: true` (dbt refuses a project with two), or None."""
    return next((name for name, entry in selectors.items() if (entry or {}).get("default") is True), None)


def named_selection(selectors: Mapping[str, Any], name: str) -> Expression:
    """The expression of the selector called `name`; raises UnknownSelectorError when there is none.

    Only `name` and the selectors it names are read, so one bad definition does not break the others;
    `method: selector` may only name a selector defined before it, as dbt reads them in file order.
    """
    if name not in selectors:
        close = difflib.get_close_matches(name, list(selectors), n=3)
        raise UnknownSelectorError(name, list(selectors), close)
    order = {selector: i for i, selector in enumerate(selectors)}
    read: dict[str, Expression] = {}

    def resolve(wanted: Any, before: str) -> Expression | None:
        if not isinstance(wanted, str) or order.get(wanted, len(order)) >= order[before]:
            return None
        if wanted not in read:
            read[wanted] = _Reader(wanted, resolve).root(_definition(selectors[wanted]))
        return read[wanted]

    return _Reader(name, resolve).root(_definition(selectors[name]))


def _definition(entry: Any) -> Any:
    return entry.get("definition") if isinstance(entry, Mapping) else None


class _Reader:
    """One selector's definition, read as dbt's parse_from_definition reads it."""

    def __init__(self, name: str, resolve: Callable[[Any, str], Expression | None]) -> None:
        self.name = name
        self.resolve = resolve

    def fail(self, problem: str) -> SelectorError:
        return SelectorError(
            f"The selector {self.name!r} in selectors.yml {problem} See "
            "https://docs.getdbt.com/reference/node-selection/yaml-selectors, then run `dbt parse`."
        )

    def root(self, definition: Any) -> Expression:
        operators = isinstance(definition, Mapping) and (
            "union" in definition or "intersection" in definition
        )
        if operators and len(definition) > 1:
            raise self.fail(
                f"has {', '.join(map(str, definition))} at its root; a root 'union' or "
                "'intersection' must be the definition's only key."
            )
        return self.read(definition)

    def read(self, definition: Any) -> Expression:
        if isinstance(definition, str):
            try:
                return parse_criterion(definition)
            except SelectorError as exc:
                raise self.fail(f"holds a bad selector: {exc}") from None
        if not isinstance(definition, Mapping):
            raise self.fail(
                f"holds {definition!r} where a selector string, a mapping, or a 'union' or "
                "'intersection' list belongs."
            )
        for operator in ("union", "intersection"):
            if operator in definition:
                return self.combination(operator, definition)
        return self.mapping(definition)

    def combination(self, operator: str, definition: Mapping[str, Any]) -> Expression:
        included: list[Expression] = []
        excluded: Expression | None = None
        for part in self.listed(definition, operator):
            if isinstance(part, Mapping) and "exclude" in part:
                if excluded is not None:
                    raise self.fail(f"has two 'exclude' entries in one '{operator}'; merge them into one.")
                excluded = self.exclusion(part)
            else:
                included.append(self.read(part))
        combined = Combination("union" if operator == "union" else "intersection", tuple(included))
        return combined if excluded is None else Combination("difference", (combined, excluded))

    def exclusion(self, definition: Mapping[str, Any]) -> Expression | None:
        parts = tuple(self.read(part) for part in self.listed(definition, "exclude"))
        if len(parts) <= 1:
            return parts[0] if parts else None
        return Combination("union", parts)

    def listed(self, definition: Mapping[str, Any], key: str) -> list[Any]:
        values = definition[key]
        if not isinstance(values, list) or not all(isinstance(v, (str, Mapping)) for v in values):
            raise self.fail(f"has a '{key}' that is not a list of selector strings and mappings.")
        return values

    def mapping(self, definition: Mapping[str, Any]) -> Expression:
        if len(definition) == 1:
            [(method, value)] = definition.items()
            return self.criterion(definition, {"method": method, "value": value})
        if definition.get("method") == "selector":
            named = definition.get("value")
            found = self.resolve(named, self.name)
            if found is None:
                raise self.fail(
                    f"names the selector {named!r}, which is not defined before it; "
                    "define it earlier in selectors.yml."
                )
            return found
        if "method" not in definition or "value" not in definition:
            raise self.fail(
                f"has a mapping with {', '.join(map(str, definition))}; give it 'method' and 'value'."
            )
        base = self.criterion(definition, {k: v for k, v in definition.items() if k != "exclude"})
        excluded = self.exclusion(definition) if "exclude" in definition else None
        return base if excluded is None else Combination("difference", (base, excluded))

    def criterion(self, definition: Mapping[str, Any], fields: Mapping[str, Any]) -> Criterion:
        shown = repr(dict(definition))
        method = fields["method"]
        if not isinstance(method, str):
            raise self.fail(
                f"has the method {method!r}; a method is a name like 'tag' or 'config.materialized'."
            )
        try:
            name, arguments = method_of(method, shown)
            parents_depth = depth_of(fields.get("parents_depth"), shown)
            children_depth = depth_of(fields.get("children_depth"), shown)
        except SelectorError as exc:
            raise self.fail(f"holds a bad selector: {exc}") from None
        indirect = fields.get("indirect_selection", "eager")
        if indirect not in INDIRECT_SELECTIONS:
            raise self.fail(
                f"has indirect_selection {indirect!r}; use one of {', '.join(INDIRECT_SELECTIONS)}."
            )
        value = fields["value"]
        if isinstance(value, (Mapping, list)) or value is None:
            raise self.fail(f"gives {shown} a value that is not a single name or pattern.")
        children, childrens_parents = bool(fields.get("children")), bool(fields.get("childrens_parents"))
        if children and childrens_parents:
            raise self.fail(f"combines childrens_parents ('@') with children ('+') in {shown}; pick one.")
        return Criterion(
            raw=shown,
            method=name,
            arguments=arguments,
            # YAML reads `true` and `1` as a bool and a number; dbt compares them as the text they were.
            value=str(value).lower() if isinstance(value, bool) else str(value),
            parents=bool(fields.get("parents")),
            parents_depth=parents_depth,
            children=children,
            children_depth=children_depth,
            childrens_parents=childrens_parents,
            indirect_selection=indirect,
        )
