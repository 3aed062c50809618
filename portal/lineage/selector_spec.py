"""dbt selector syntax: `Criterion` (one part, like `2+tag:nightly+1`), `SelectionSpec` (`--select` and
`--exclude` as unions of intersections of criteria), and the parsers that build them from selector
strings, as in dbt-core's `selector_spec.py` and `graph/cli.py`."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from portal.lineage.errors import SelectorError
from portal.lineage.selector_methods import METHODS

# Bounds on what a person types: a selector of thousands of parts takes seconds per thousand to
# evaluate, and a depth of thousands of digits is no depth anyone means.
MAX_SELECTOR_PARTS = 500
MAX_DEPTH_DIGITS = 6

# With no --select, dbt selects this union (dbt/graph/cli.py DEFAULT_INCLUDES).
DEFAULT_SELECT = ("fqn:*", "source:*", "exposure:*", "metric:*", "semantic_model:*")

# One selector part: [@][N+][method[.arg...]:]value[+N], as in dbt's selector_spec.
_CRITERION = re.compile(
    r"""\A
    (?P<childrens_parents>@)?
    (?:(?P<parents_depth>\d*)(?P<parents>\+))?
    (?:(?P<method>[\w.]+):)?
    (?P<value>.*?)
    (?:(?P<children>\+)(?P<children_depth>\d*))?
    \Z""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One selector part, like `2+tag:nightly+1`."""

    raw: str
    method: str
    arguments: tuple[str, ...]
    value: str
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    childrens_parents: bool = False


# A union (space-separated) of intersections (comma-separated) of criteria.
UnionSpec = tuple[tuple[Criterion, ...], ...]


@dataclass(frozen=True, slots=True)
class SelectionSpec:
    include: UnionSpec
    exclude: UnionSpec
    include_is_default: bool


def _default_method(value: str) -> str:
    if "/" in value or (os.path.altsep and os.path.altsep in value) or os.path.sep in value:
        return "path"
    if value.lower().endswith((".sql", ".py", ".csv")):
        return "file"
    return "fqn"


def parse_criterion(raw: str) -> Criterion:
    match = _CRITERION.match(raw)
    if match is None:  # pragma: no cover - the pattern accepts any string
        raise SelectorError(f"{raw!r} is not a dbt selector.")
    parts = match.groupdict()
    if parts["childrens_parents"] and parts["children"]:
        raise SelectorError(
            f"{raw!r} combines '@' with a trailing '+'; '@' already selects all children and their "
            f"parents. Use '@{parts['value']}' or '{parts['value']}+'."
        )
    value = parts["value"]
    if parts["method"] is None:
        method, arguments = _default_method(value), ()
    else:
        method, *rest = parts["method"].split(".")
        arguments = tuple(rest)
        if method not in METHODS:
            close = difflib.get_close_matches(method, list(METHODS), n=1)
            hint = f" Did you mean '{close[0]}:'?" if close else ""
            raise SelectorError(
                f"'{method}:' in {raw!r} is not a selector method.{hint} "
                f"Methods: {', '.join(m + ':' for m in sorted(METHODS))}."
            )
        if method == "config" and not arguments:
            raise SelectorError(f"{raw!r} names no config key; write it like 'config.materialized:view'.")
    if not value:
        raise SelectorError(f"{raw!r} has no value to select: write a name, or a method and a value.")
    for depth in (parts["parents_depth"], parts["children_depth"]):
        if depth and len(depth) > MAX_DEPTH_DIGITS:
            raise SelectorError(
                f"{_shown(raw)} asks for a depth of {len(depth)} digits; write at most "
                f"{MAX_DEPTH_DIGITS} digits, or drop the number to follow every level."
            )
    return Criterion(
        raw=raw,
        method=method,
        arguments=arguments,
        value=value,
        parents=bool(parts["parents"]),
        parents_depth=int(parts["parents_depth"]) if parts["parents_depth"] else None,
        children=bool(parts["children"]),
        children_depth=int(parts["children_depth"]) if parts["children_depth"] else None,
        childrens_parents=bool(parts["childrens_parents"]),
    )


def _parse_union(selectors: str | Sequence[str]) -> UnionSpec:
    texts = [selectors] if isinstance(selectors, str) else list(selectors)
    union = []
    for text in texts:
        for spec in text.split():
            parts = spec.split(",")
            if "" in parts:
                raise SelectorError(
                    f"{spec!r} has an empty part around a comma; join selectors with ',' only."
                )
            union.append(tuple(parse_criterion(part) for part in parts))
            count = sum(len(intersection) for intersection in union)
            if count > MAX_SELECTOR_PARTS:
                raise SelectorError(
                    f"The selector has more than {MAX_SELECTOR_PARTS} parts; select with fewer (a tag:, "
                    "path: or group: method selects many nodes in one part)."
                )
    return tuple(union)


def _shown(raw: str, limit: int = 60) -> str:
    return repr(raw if len(raw) <= limit else raw[: limit - 3] + "...")


def parse_selection(
    select: str | Sequence[str] | None = None, exclude: str | Sequence[str] | None = None
) -> SelectionSpec:
    """Parse `--select`/`--exclude` like dbt: spaces make unions, commas intersections.

    No `select` (None) means dbt's default selection: every node, source, exposure, metric and semantic
    model.
    """
    include = _parse_union(DEFAULT_SELECT if select is None else select)
    return SelectionSpec(
        include=include, exclude=_parse_union(exclude or ()), include_is_default=select is None
    )
