"""Text from dbt and from users inside Streamlit markdown: shown as written, never as markup.

A column named `*_[x]` or a description holding `<b>`, `:red[...]` or `$x$` must read as those
characters, not bold, a link, a colour or LaTeX. CommonMark lets a backslash escape any ASCII
punctuation, and Streamlit's own syntax (directives, emoji and icon shortcodes, LaTeX) starts
with punctuation too, so escaping all of it leaves nothing to interpret.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

_ESCAPES = {ord(c): "\\" + c for c in string.punctuation}
_WHITESPACE = re.compile(r"\s+")
HIGHLIGHT = "orange-background"


def escape(text: str) -> str:
    """`text` as markdown that shows exactly `text`, on one line: a run of whitespace is one
    space (a newline would end the line, four spaces start a code block)."""
    return _WHITESPACE.sub(" ", text).translate(_ESCAPES)


def highlighted(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text`, escaped, with each [start, end) span on a coloured background."""
    parts, at = [], 0
    for start, end in sorted(spans):
        if start < at or end <= start:
            continue  # overlapping or empty: the core merges them, this keeps the markup whole
        parts += [escape(text[at:start]), f":{HIGHLIGHT}[{escape(text[start:end])}]"]
        at = end
    parts.append(escape(text[at:]))
    return "".join(parts)


__all__ = ["HIGHLIGHT", "escape", "highlighted"]
