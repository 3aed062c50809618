"""dbt node selection over a `ManifestIndex`: the graph operators (`+`, `@`, depths), how tests join
(indirect selection), the set algebra of unions, intersections and differences, and `select()`.

Selection follows dbt-core 1.11 (`dbt/graph/cli.py`, `selector.py`, `selector_methods.py`,
`selector_spec.py`): the same syntax, methods and set algebra, so `select()` returns what
`dbt ls --select ...` (or `--selector NAME`) lists on the same manifest. Tests are listed only with
`with_tests`, and then the way dbt's indirect selection adds them: by default ("eager") every test with
at least one selected parent.

On the CLI's selection path, so it must stay cheap to import (see `portal.lineage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from portal.lineage.errors import SelectorError
from portal.lineage.index import LISTED_TYPES, TEST_TYPES, ManifestIndex
from portal.lineage.selector_methods import METHODS, path_outside_project
from portal.lineage.selector_spec import Combination, Criterion, Expression, parse_selection
from portal.lineage.selectors_yml import default_selector, named_selection


def _walk(start: Iterable[int], edges: list[tuple[int, ...]], depth: int | None) -> set[int]:
    """Nodes reachable from `start` in 1..depth steps along `edges` (breadth-first, like dbt)."""
    seen: set[int] = set()
    frontier = set(start)
    steps = 0
    while frontier and (depth is None or steps < depth):
        following = {n for node in frontier for n in edges[node] if n not in seen}
        seen |= following
        frontier = following
        steps += 1
    return seen


def _criterion_nodes(index: ManifestIndex, criterion: Criterion, with_tests: bool) -> set[int]:
    found = METHODS[criterion.method](index, criterion.value, criterion.arguments)
    selected = set(found)
    if criterion.childrens_parents:
        descendants = _walk(found, index.children, None) | found
        selected |= descendants | _walk(descendants, index.parents, None)
    if criterion.parents:
        selected |= _walk(found, index.parents, criterion.parents_depth)
    if criterion.children:
        selected |= _walk(found, index.children, criterion.children_depth)
    if with_tests and criterion.indirect_selection != "empty":
        selected |= _tests_joining(index, selected, criterion.indirect_selection)
    return selected


def _tests_joining(index: ManifestIndex, selected: set[int], mode: str) -> set[int]:
    """The tests on `selected` that dbt's indirect selection adds (NodeSelector.expand_selection).

    Eager adds a test when any of its parents is selected, cautious when all are, buildable when all
    are selected, upstream of the selection, or sources. What cautious and buildable leave out never
    joins later: every set operation dbt builds is eager, which keeps only what each part chose.
    """
    types = index.resource_types
    tests = {c for n in selected for c in index.children[n] if types[c] in TEST_TYPES}
    if mode == "eager":
        return tests
    allowed = selected
    if mode == "buildable":
        sources = {i for i, kind in enumerate(types) if kind == "source"}
        allowed = selected | _walk(selected, index.parents, None) | sources
    return {test for test in tests if allowed.issuperset(index.parents[test])}


@dataclass(frozen=True)
class Selection:
    """What a selection chose, sorted like `dbt ls`, warnings about parts that matched nothing, and the
    named selector that chose (given, or the project's default), if one did."""

    unique_ids: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    selector: str | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self.unique_ids)

    def __len__(self) -> int:
        return len(self.unique_ids)


def _nodes(index: ManifestIndex, expression: Expression, with_tests: bool, warnings: list[str]) -> set[int]:
    if isinstance(expression, Criterion):
        return _criterion_nodes(index, expression, with_tests)
    sets = [_nodes(index, part, with_tests, warnings) for part in expression.parts]
    if not sets:
        hit: set[int] = set()
    elif expression.operator == "union":
        hit = set.union(*sets)
    elif expression.operator == "intersection":
        hit = set.intersection(*sets)
    else:
        hit = set.difference(*sets)
    if not hit and expression.warn_if_empty is not None:
        warnings.append(_nothing_matched(index, expression))
    return hit


def _nothing_matched(index: ManifestIndex, intersection: Combination) -> str:
    criteria = [c for c in intersection.parts if isinstance(c, Criterion)]
    close = [s for c in criteria if c.method == "fqn" for s in index.suggest(c.value)]
    hint = f" Did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
    if len(criteria) == 1 and criteria[0].method == "path":
        hint += path_outside_project(index, criteria[0].value)
    raw = intersection.warn_if_empty
    return f"The selection criterion {raw!r} does not match any enabled node.{hint}"


def _given(selectors: str | Sequence[str] | None) -> bool:
    return selectors is not None and (isinstance(selectors, str) or len(selectors) > 0)


def select(
    index: ManifestIndex,
    select: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    *,
    selector_name: str | None = None,
    with_tests: bool = False,
) -> Selection:
    """The nodes `dbt ls --select SELECT --exclude EXCLUDE` (or `dbt ls --selector NAME`) lists, tests
    only `with_tests`.

    With neither `select` nor `exclude`, the project's default selector (`default: true` in its
    selectors.yml) chooses, as in dbt ls; without one, every node does. `selector_name` names a selector
    of the project's selectors.yml; dbt then ignores --select and --exclude, so passing them with it is
    refused rather than ignored. Raises SelectorError naming the bad part when a selector is not valid,
    UnknownSelectorError when the project has no selector of that name.
    """
    named = selector_name
    if named is not None and (_given(select) or _given(exclude)):
        raise SelectorError(
            f"Pass either the selector {named!r} or --select/--exclude, not both: dbt ignores "
            "--select and --exclude when --selector is given."
        )
    if named is None and not (_given(select) or _given(exclude)):
        named = default_selector(index.selectors)
    if named is not None:
        expression: Expression = named_selection(index.selectors, named)
    else:
        # Computed only when a part holds punctuation, which well-formed selectors rarely do.
        expression = parse_selection(select, exclude, in_names=lambda c: c in index.name_characters)
    warnings: list[str] = []
    chosen = _nodes(index, expression, with_tests, warnings)
    listed = LISTED_TYPES if with_tests else LISTED_TYPES - TEST_TYPES
    types = index.resource_types
    unique_ids = sorted(index.unique_ids[i] for i in chosen if types[i] in listed)
    return Selection(unique_ids=tuple(unique_ids), warnings=tuple(warnings), selector=named)
