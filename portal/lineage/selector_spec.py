"""dbt selector syntax: `Criterion` (one part, like `2+tag:nightly+1`), `Combination` (a union,
intersection or difference of parts), and the parser that builds them from `--select` and `--exclude`
strings, as in dbt-core's `selector_spec.py` and `graph/cli.py`. Named selectors (selectors.yml) build
the same expressions in `selectors_yml`."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from portal.lineage.errors import MalformedSelectorError, SelectorError, SelectorProblem
from portal.lineage.selector_methods import METHODS

# Bounds on what a person types: a selector of thousands of parts takes seconds per thousand to
# evaluate, and a depth of thousands of digits is no depth anyone means.
MAX_SELECTOR_PARTS = 500
MAX_DEPTH_DIGITS = 6

# With no --select, dbt selects this union (dbt/graph/cli.py DEFAULT_INCLUDES).
DEFAULT_SELECT = ("fqn:*", "source:*", "exposure:*", "metric:*", "semantic_model:*")
# How tests join a selection (dbt's IndirectSelection); `eager` is dbt's default.
INDIRECT_SELECTIONS = ("eager", "cautious", "buildable", "empty")

# One selector part: [@][N+][method[.arg...]:]value[+N], as in dbt's selector_spec. Like dbt's, `.`
# stops at a line break, so a part holding one does not match (dbt: "Invalid selector spec").
_CRITERION = re.compile(
    r"""\A
    (?P<childrens_parents>@)?
    (?:(?P<parents_depth>\d*)(?P<parents>\+))?
    (?:(?P<method>[\w.]+):)?
    (?P<value>.*?)
    (?:(?P<children>\+)(?P<children_depth>\d*))?
    \Z""",
    re.VERBOSE,
)
# dbt's --select splits on single spaces (click's MultiOption and parse_union split on " "), so a tab
# stays inside a part; runs of spaces only make empty parts, which select nothing.
_SPEC = re.compile(r"[^ ]+")
# Characters a name can hold without them saying anything about syntax: letters, digits, `_`, the
# namespace dot and fnmatch's wildcards.
_PLAIN = frozenset("_.*?")
_REASONS = {
    "+": "has a `+` inside a name: `+` selects parents before a name (`+orders`, `2+orders`) and "
    "children after it (`orders+`, `orders+1`), once on each side",
    "@": "has an `@` inside a name: `@` goes first, before the name and any `+` (`@orders`)",
    ":": "has a `:` that follows no method name (a method is like `tag:` or `config.materialized:`)",
}


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
    indirect_selection: str = "eager"


@dataclass(frozen=True, slots=True)
class Combination:
    """A set operation over selections: a union, an intersection, or a difference (the first part minus
    every other part), as dbt's SelectionUnion, SelectionIntersection and SelectionDifference.

    `warn_if_empty` is the text of a `--select`/`--exclude` part, which dbt warns about when it selects
    nothing (dbt's `expect_exists`); named selectors never warn.
    """

    operator: Literal["union", "intersection", "difference"]
    parts: tuple[Expression, ...]
    warn_if_empty: str | None = None


Expression = Criterion | Combination


def _default_method(value: str) -> str:
    if "/" in value or (os.path.altsep and os.path.altsep in value) or os.path.sep in value:
        return "path"
    if value.lower().endswith((".sql", ".py", ".csv")):
        return "file"
    return "fqn"


def method_of(raw_method: str, shown: str) -> tuple[str, tuple[str, ...]]:
    """A method name with its dotted arguments (`config.materialized`), refused unless dbt has it."""
    method, *arguments = raw_method.split(".")
    if method not in METHODS:
        close = difflib.get_close_matches(method, list(METHODS), n=1)
        hint = f" Did you mean '{close[0]}:'?" if close else ""
        raise SelectorError(
            f"'{method}:' in {shown} is not a selector method.{hint} "
            f"Methods: {', '.join(m + ':' for m in sorted(METHODS))}."
        )
    if method == "config" and (not arguments or "" in arguments):
        raise SelectorError(f"{shown} names no config key; write it like 'config.materialized:view'.")
    return method, tuple(arguments)


def depth_of(depth: str | int | None, shown: str) -> int | None:
    """A graph operator's depth; no digits mean every level, as in dbt."""
    if not depth:
        return None
    digits = str(depth)
    if len(digits) > MAX_DEPTH_DIGITS:
        raise SelectorError(
            f"{shown} asks for a depth of {len(digits)} digits; write at most "
            f"{MAX_DEPTH_DIGITS} digits, or drop the number to follow every level."
        )
    if not digits.isdigit():
        raise SelectorError(f"{shown} has the depth {digits!r}; a depth is a whole number of levels.")
    return int(digits)


def _shown(raw: str, limit: int = 60) -> str:
    return repr(raw if len(raw) <= limit else raw[: limit - 3] + "...")


def parse_criterion(raw: str) -> Criterion:
    match = _CRITERION.match(raw)
    if match is None:  # only a line break stops the pattern
        raise SelectorError(f"{_shown(raw)} holds a line break; write a selector on one line.")
    parts = match.groupdict()
    shown = _shown(raw)
    if parts["childrens_parents"] and parts["children"]:
        raise SelectorError(
            f"{shown} combines '@' with a trailing '+'; '@' already selects all children and their "
            f"parents. Use '@{parts['value']}' or '{parts['value']}+'."
        )
    value = parts["value"]
    arguments: tuple[str, ...] = ()
    if parts["method"] is None:
        method = _default_method(value)
    else:
        method, arguments = method_of(parts["method"], shown)
    if not value:
        raise SelectorError(f"{shown} has no value to select: write a name, or a method and a value.")
    return Criterion(
        raw=raw,
        method=method,
        arguments=arguments,
        value=value,
        parents=bool(parts["parents"]),
        parents_depth=depth_of(parts["parents_depth"], shown),
        children=bool(parts["children"]),
        children_depth=depth_of(parts["children_depth"], shown),
        childrens_parents=bool(parts["childrens_parents"]),
    )


def _parts(spec: str) -> list[tuple[int, str]]:
    """The comma-separated parts of one space-separated spec, each with its 0-based offset in `spec`."""
    parts, offset = [], 0
    for part in spec.split(","):
        parts.append((offset, part))
        offset += len(part) + 1
    return parts


def _malformed(part: str, in_names: Callable[[str], bool]) -> str | None:
    """Why a part is malformed, or None when it is not.

    dbt refuses a part holding a line break. Any other text it reads as a name: `&&&` is an fqn selector
    that matches nothing, with a warning. A name holding punctuation that no node, folder or package of
    the project holds matches nothing whatever was meant, so it is refused instead of leaving a
    near-empty answer that looks right; dbt's answer to every selector that can select something stays.
    """
    match = _CRITERION.match(part)
    if match is None:
        return "holds a line break, which dbt refuses"
    value = match.group("value")
    method = (match.group("method") or _default_method(value)).split(".")[0]
    if method != "fqn" or "[" in value:
        return None  # other methods read other text; a bracket expression matches any character
    for character in value:
        if character.isalnum() or character in _PLAIN or in_names(character):
            continue
        shown = f"a {_whitespace_name(character)}" if character.isspace() else f"`{character}`"
        return _REASONS.get(character) or (
            f"holds {shown}, which is not dbt selector syntax and in no node, folder or package name "
            "of this project, so it can select nothing"
        )
    return None


def _whitespace_name(character: str) -> str:
    return {"\t": "tab", "\r": "carriage return"}.get(character, f"space character U+{ord(character):04X}")


def _parse_union(
    selectors: str | Sequence[str], warn: bool, in_names: Callable[[str], bool] | None
) -> Combination:
    # A list of selectors is one union, as if written with spaces (dbt chains --select's values).
    text = selectors if isinstance(selectors, str) else " ".join(selectors)
    problems: list[SelectorProblem] = []
    intersections: list[Combination] = []
    count = 0
    for spec in _SPEC.finditer(text):
        parts = _parts(spec.group())
        if any(not part for _, part in parts):
            raise SelectorError(
                f"{_shown(spec.group())} has an empty part around a comma; join selectors with ',' only."
            )
        count += len(parts)
        if count > MAX_SELECTOR_PARTS:
            raise SelectorError(
                f"The selector has more than {MAX_SELECTOR_PARTS} parts; select with fewer (a tag:, "
                "path: or group: method selects many nodes in one part)."
            )
        criteria = []
        for offset, part in parts:
            reason = _malformed(part, in_names) if in_names is not None else None
            if reason is not None:
                problems.append(SelectorProblem(part, spec.start() + offset + 1, reason))
            elif not problems:  # past a malformed part, only more malformed parts are worth naming
                criteria.append(parse_criterion(part))
        intersections.append(
            Combination("intersection", tuple(criteria), warn_if_empty=spec.group() if warn else None)
        )
    if problems:
        raise MalformedSelectorError(text, problems)
    return Combination("union", tuple(intersections))


def parse_selection(
    select: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    *,
    in_names: Callable[[str], bool] | None = None,
) -> Combination:
    """Parse `--select`/`--exclude` like dbt: spaces make unions, commas intersections, and the
    exclusion is taken from the selection.

    No `select` (None) means dbt's default selection: every node, source, exposure, metric and semantic
    model. `in_names(character)` tells whether a character occurs in the project's node names; with it,
    a name holding punctuation no name holds is refused as malformed (see `_malformed`).
    """
    include = _parse_union(DEFAULT_SELECT if select is None else select, select is not None, in_names)
    excluded = _parse_union(exclude or (), True, in_names)
    return Combination("difference", (include, excluded))
