"""Browsing the catalog: search, filters, sorting and the filters' choices, over the service's
entries and each one's health now.

Lifecycle (where a product is in its life) and health (how far it can be trusted now) are two
separate filters: "failed" is a lifecycle, "failing" a health level (`project/statuses.py`).

A search says why each result matched (`search`): which of its texts hold the words, and where,
so a result found by one of sixty column names does not look like a mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portal.errors import InvalidInput
from portal.observability.health import ProductHealth, health_of
from portal.observability.profile import as_utc
from portal.project.statuses import HEALTH_LEVELS, LISTED_LIFECYCLES
from portal.service import CatalogEntry, PortalService, SearchField

SORTS = ("name", "health", "last refreshed", "row count", "owner", "type")


@dataclass(frozen=True)
class CatalogQuery:
    text: str = ""  # words that must all appear (name, description, columns, tags, labels, owner, type)
    types: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    frequencies: tuple[str, ...] = ()
    lifecycles: tuple[str, ...] = ()  # any of LISTED_LIFECYCLES
    health: tuple[str, ...] = ()  # any of HEALTH_LEVELS
    tags: tuple[str, ...] = ()  # dbt tags, all of
    labels: tuple[str, ...] = ()  # meta.tags, all of
    include_all_models: bool = False
    sort: str = "name"
    descending: bool = False

    def __post_init__(self) -> None:
        _known("sort", (self.sort,), SORTS)
        _known("lifecycle", self.lifecycles, LISTED_LIFECYCLES)
        _known("health", self.health, HEALTH_LEVELS)


def _known(what: str, given: tuple[str, ...], known: tuple[str, ...]) -> None:
    unknown = [value for value in given if value not in known]
    if unknown:
        raise InvalidInput(f"Unknown {what} {', '.join(map(repr, unknown))}; use one of {', '.join(known)}.")


SNIPPET = 120  # characters of a long text (a description) shown around its first match


@dataclass(frozen=True)
class Match:
    """One text of an entry that holds search words: what it is, the text and where the words are."""

    field: str  # name, description, column, column description, dbt tag, label, owner, type
    text: str  # the whole text, or a snippet of SNIPPET characters around the first word
    spans: tuple[tuple[int, int], ...]  # [start, end) of each word found in `text`, in order
    of: str | None = None  # the column, for a column description


@dataclass(frozen=True)
class Found:
    """A search result: the entry with its health, and why it matched (nothing without search words)."""

    item: ProductHealth
    matched: tuple[Match, ...] = ()


def browse(
    service: PortalService, query: CatalogQuery = CatalogQuery(), *, now: datetime | None = None
) -> list[ProductHealth]:
    """The entries matching `query`, each with its health now, in the order asked for."""
    return [found.item for found in search(service, query, now=now)]


def search(
    service: PortalService, query: CatalogQuery = CatalogQuery(), *, now: datetime | None = None
) -> list[Found]:
    """`browse`, with each result's reasons for matching the search words."""
    words = query.text.lower().split()
    matching = [
        e
        for e in service.entries(include_all_models=query.include_all_models)
        if all(w in e.search_text for w in words)
        and (not query.types or e.data_product_type in query.types)
        and (not query.owners or e.owner in query.owners)
        and (not query.frequencies or e.update_frequency in query.frequencies)
        and (not query.lifecycles or e.lifecycle in query.lifecycles)
        and all(t in e.tags for t in query.tags)
        and all(label in e.labels for label in query.labels)
    ]
    judged = health_of(service, matching, now=now)
    found = [judged[e.unique_id] for e in matching]
    if query.health:
        found = [h for h in found if h.level in query.health]
    found.sort(key=_sort_key(query.sort), reverse=query.descending)
    return [Found(item=h, matched=matches(h.entry, words)) for h in found]


def matches(entry: CatalogEntry, words: list[str]) -> tuple[Match, ...]:
    """Each of the entry's texts that holds any of the (lower-case) words, in the entry's order."""
    if not words:
        return ()
    pattern = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)), re.I)
    found = []
    for search_field in entry.search_fields:
        if any(w in search_field.folded for w in words):
            found.append(_match(search_field, pattern))
    return tuple(found)


def _match(search_field: SearchField, pattern: re.Pattern[str]) -> Match:
    text = " ".join(search_field.text.split())  # one line: descriptions span several
    spans = [m.span() for m in pattern.finditer(text)]  # may miss where lower() changes a length
    if len(text) > SNIPPET:
        start = max(0, (spans[0][0] if spans else 0) - SNIPPET // 3)
        end = min(len(text), start + SNIPPET)
        start = max(0, end - SNIPPET)
        head, tail = ("…" if start else ""), ("…" if end < len(text) else "")
        shift = len(head) - start
        spans = [(a + shift, b + shift) for a, b in spans if a >= start and b <= end]
        text = head + text[start:end] + tail
    return Match(field=search_field.field, text=text, spans=tuple(spans), of=search_field.of)


def facets(service: PortalService, *, include_all_models: bool = False) -> dict[str, list[str]]:
    """The values the catalog's filters offer: those present, and every health level."""
    entries = service.entries(include_all_models=include_all_models)

    def values(attr: str) -> list[str]:
        return sorted({str(getattr(e, attr)) for e in entries if getattr(e, attr)})

    def each(attr: str) -> list[str]:
        return sorted({value for e in entries for value in getattr(e, attr)})

    present = {e.lifecycle for e in entries}
    return {
        "types": values("data_product_type"),
        "owners": values("owner"),
        "frequencies": values("update_frequency"),
        "lifecycles": [s for s in LISTED_LIFECYCLES if s in present],
        "health": list(HEALTH_LEVELS),
        "tags": each("tags"),
        "labels": each("labels"),
    }


def _sort_key(sort: str) -> Callable[[ProductHealth], Any]:
    epoch = datetime.min.replace(tzinfo=UTC)
    keys: dict[str, Callable[[ProductHealth], Any]] = {
        "name": lambda h: h.name,
        "health": lambda h: h.rank,
        "last refreshed": lambda h: (as_utc(h.last_refreshed) or epoch, h.name),
        "row count": lambda h: (_row_count(h.entry), h.name),
        "owner": lambda h: (h.entry.owner or "~", h.name),
        "type": lambda h: (h.entry.data_product_type or "~", h.name),
    }
    return keys[sort]


def _row_count(entry: CatalogEntry) -> int:
    return entry.row_count if entry.row_count is not None else -1


__all__ = ["SORTS", "CatalogQuery", "Found", "Match", "browse", "facets", "matches", "search"]
