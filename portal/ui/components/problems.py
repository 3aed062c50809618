"""Refusals as the pages that take SQL show them: each problem with its field and, for the SQL,
the line it points at with a caret under the column (Create and the SQL workspace)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from portal.creation.spec import Problem


def show_problems(problems: Sequence[Problem], sql_text: str) -> None:
    for problem in problems:
        where, excerpt = "", ""
        if problem.position:
            line, column = problem.position
            where = f" · line {line}, column {column}"
            lines = (sql_text if problem.field == "sql" else "").splitlines()
            if problem.field == "sql" and 0 < line <= len(lines):
                excerpt = f"{line:>4} | {lines[line - 1]}\n     | {' ' * (column - 1)}^"
        st.error(f"**{problem.field}**{where}: {problem.message}", icon=":material/block:")
        if excerpt:
            st.code(excerpt, language=None)
