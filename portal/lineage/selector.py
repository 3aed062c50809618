"""dbt node selection over a `ManifestIndex`: the graph operators (`+`, `@`, depths), the set algebra of
unions and intersections, and `select()`.

Selection follows dbt-core 1.11 (`dbt/graph/cli.py`, `selector.py`, `selector_methods.py`,
`selector_spec.py`): the same syntax, methods and set algebra, so `select()` returns what
`dbt ls --select ...` lists on the same manifest. Tests are listed only with `with_tests`, and then the
way dbt's default ("eager") indirect selection adds them: every test with at least one selected parent.

On the CLI's selection path, so it must stay cheap to import (see `portal.lineage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from portal.lineage.index import LISTED_TYPES, TEST_TYPES, ManifestIndex
from portal.lineage.selector_methods import METHODS
from portal.lineage.selector_spec import Criterion, UnionSpec, parse_selection


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
    if with_tests:
        # Eager indirect selection: a test joins when any of its parents is selected.
        types = index.resource_types
        selected |= {c for n in selected for c in index.children[n] if types[c] in TEST_TYPES}
    return selected


@dataclass(frozen=True)
class Selection:
    """What a selection chose, sorted like `dbt ls`, and warnings about parts that matched nothing."""

    unique_ids: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[str]:
        return iter(self.unique_ids)

    def __len__(self) -> int:
        return len(self.unique_ids)


def _union_nodes(
    index: ManifestIndex, union: UnionSpec, with_tests: bool, warnings: list[str] | None
) -> set[int]:
    result: set[int] = set()
    for intersection in union:
        sets = [_criterion_nodes(index, criterion, with_tests) for criterion in intersection]
        hit = set.intersection(*sets)
        if not hit and warnings is not None:
            raw = ",".join(c.raw for c in intersection)
            close = [s for c in intersection if c.method == "fqn" for s in index.suggest(c.value)]
            hint = f" Did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
            warnings.append(f"The selection criterion {raw!r} does not match any enabled node.{hint}")
        result |= hit
    return result


def select(
    index: ManifestIndex,
    select: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    *,
    with_tests: bool = False,
) -> Selection:
    """The nodes `dbt ls --select SELECT --exclude EXCLUDE` lists, tests only `with_tests`.

    Raises SelectorError naming the bad part when a selector is not valid.
    """
    spec = parse_selection(select, exclude)
    warnings: list[str] = []
    chosen = _union_nodes(index, spec.include, with_tests, None if spec.include_is_default else warnings)
    if spec.exclude:
        chosen -= _union_nodes(index, spec.exclude, with_tests, warnings)
    listed = LISTED_TYPES if with_tests else LISTED_TYPES - TEST_TYPES
    types = index.resource_types
    unique_ids = sorted(index.unique_ids[i] for i in chosen if types[i] in listed)
    return Selection(unique_ids=tuple(unique_ids), warnings=tuple(warnings))
