"""Text from dbt and from users inside Streamlit markdown, two ways.

- `escape`: shown exactly as written, never as markup. A column named `*_[x]` or a description
  holding `<b>`, `:red[...]` or `$x$` must read as those characters, not bold, a link, a colour
  or LaTeX. CommonMark lets a backslash escape any ASCII punctuation, and Streamlit's own syntax
  (directives, emoji and icon shortcodes, LaTeX) starts with punctuation too, so escaping all of
  it leaves nothing to interpret. For names, search snippets, lineage labels.
- `safe_markdown`: a dbt description rendered as the Markdown its author wrote, safely: raw HTML
  stays escaped (Streamlit's default, unsafe_allow_html=False), an image becomes a link (an
  image would make the browser fetch from its host: the portal serves nothing that does), and
  `$` is a dollar, not LaTeX ("$5 to $10" is money in a description).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

import streamlit as st

_ESCAPES = {ord(c): "\\" + c for c in string.punctuation}
_WHITESPACE = re.compile(r"\s+")
HIGHLIGHT = "orange-background"
# `![alt](url)` and `![alt][ref]`: the `!` makes it an image; without it, the same link.
_IMAGE = re.compile(r"!\[")
# Code is shown as written: nothing inside fences or backticks is touched.
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)


def escape(text: str) -> str:
    """`text` as markdown that shows exactly `text`, on one line: a run of whitespace is one
    space (a newline would end the line, four spaces start a code block)."""
    return _WHITESPACE.sub(" ", text).translate(_ESCAPES)


def highlighted(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` escaped, with each [start, end) span on a coloured background."""
    out, at = [], 0
    for start, end in sorted(spans):
        if start < at or end <= start:
            continue  # overlapping or empty: the earlier span already covers it
        out.append(escape(text[at:start]))
        out.append(f":{HIGHLIGHT}[{escape(text[start:end])}]")
        at = end
    out.append(escape(text[at:]))
    return "".join(out)


def safe_markdown(text: str) -> str:
    """The Markdown to render for a description: images as links, dollars escaped, code as is."""
    parts = _CODE.split(text)
    return "".join(
        part if i % 2 else _IMAGE.sub("[", part).replace("$", r"\$") for i, part in enumerate(parts)
    )


def show_description(text: str, *, empty: str = "_No description._") -> None:
    st.markdown(safe_markdown(text) if text.strip() else empty)


__all__ = ["HIGHLIGHT", "escape", "highlighted", "safe_markdown", "show_description"]
