"""The errors lineage raises, as portal.errors kinds: a bad selector is invalid input, an unknown node
is not found."""

from __future__ import annotations

from collections.abc import Sequence

from portal.errors import InvalidInput, Kind


class LineageError(InvalidInput):
    """Lineage cannot answer; the message says what was wrong and what to do."""


class SelectorError(LineageError):
    """A selector is not valid dbt selector syntax; the message names the bad part."""


class UnknownNodeError(LineageError):
    """No node has that name or unique id; `suggestions` holds close names."""

    kind = Kind.NOT_FOUND

    def __init__(self, text: str, suggestions: Sequence[str]) -> None:
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"No node is called {text!r}.{hint} Pick a name or unique id from the project.")
        self.text = text
        self.suggestions = tuple(suggestions)
