"""The errors lineage raises, as portal.errors kinds: a bad selector is invalid input, an unknown node
or named selector is not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from portal.errors import InvalidInput, Kind


class LineageError(InvalidInput):
    """Lineage cannot answer; the message says what was wrong and what to do."""


class SelectorError(LineageError):
    """A selector is not valid dbt selector syntax; the message names the bad part."""


@dataclass(frozen=True, slots=True)
class SelectorProblem:
    """One malformed part of a selector: the part, the character it starts at (1-based), and why."""

    token: str
    position: int
    reason: str


class MalformedSelectorError(SelectorError):
    """A selector holds parts that are not dbt selector syntax; `problems` holds each, first first."""

    def __init__(self, selector: str, problems: Sequence[SelectorProblem]) -> None:
        first, *others = problems
        shown = selector if len(selector) <= 80 else selector[:77] + "..."
        also = "; ".join(f"character {p.position}: `{_printable(p.token)}`" for p in others)
        super().__init__(
            f"The selector {shown!r} is malformed at character {first.position}: `{_printable(first.token)}` "
            f"{first.reason}." + (f" Also at {also}." if also else "") + " In dbt's syntax a space joins "
            "selectors into a union, a comma into an intersection, `+` and `@` select relatives, and "
            "`method:value` picks a method (like `tag:nightly`).",
            problems=problems,
        )
        self.selector = selector


def _printable(token: str) -> str:
    # A tab or line break shown as itself would hide where the token ends.
    return token.encode("unicode_escape").decode("ascii") if not token.isprintable() else token


class UnknownNodeError(LineageError):
    """No node has that name or unique id; `suggestions` holds close names."""

    kind = Kind.NOT_FOUND

    def __init__(self, text: str, suggestions: Sequence[str]) -> None:
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"No node is called {text!r}.{hint} Pick a name or unique id from the project.")
        self.text = text
        self.suggestions = tuple(suggestions)


class UnknownSelectorError(LineageError):
    """The project defines no named selector (selectors.yml) of that name; `available` holds those it does."""

    kind = Kind.NOT_FOUND

    def __init__(self, name: str, available: Sequence[str], suggestions: Sequence[str]) -> None:
        if not available:
            fix = "The project defines no selectors: add them to its selectors.yml and run `dbt parse`."
        else:
            hint = f"Did you mean {', '.join(suggestions)}? " if suggestions else ""
            fix = f"{hint}Its selectors.yml defines {', '.join(available)}."
        super().__init__(f"No selector is called {name!r}. {fix}")
        self.name = name
        self.available = tuple(available)
