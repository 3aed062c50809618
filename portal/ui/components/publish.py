"""Write-audit-publish as a run shows it: where it was audited (schema or Nessie branch), the
commits and what became of it. Used by a product's Runs tab and by the Create page's result."""

from __future__ import annotations

import streamlit as st

from portal.runs import PublishRecord

OUTCOME_COLOR = {
    "published": "green",
    "running": "blue",
    "failed": "red",
    "conflict": "orange",
    "error": "red",
}
OUTCOME_TEXT = {
    "published": "merged into main",
    "running": "building on the branch",
    "failed": "not merged: the build or a test failed",
    "conflict": "not merged: main moved and Nessie refused the merge",
    "error": "not merged: Nessie or Trino failed",
}


def outcome_label(record: PublishRecord) -> str:
    """Markdown: the outcome in its colour, with words (colour alone is not enough to read it)."""
    return f":{OUTCOME_COLOR.get(record.outcome, 'gray')}[{record.outcome}]"


def render_publish(record: PublishRecord, key: str) -> None:
    """The record of one run; on Nessie a small table of the commits involved."""
    if record.engine != "nessie":
        st.markdown(f"**Write-audit-publish** {outcome_label(record)} · {record.summary()}")
        if record.message and not record.published:  # e.g. the build was stopped, and why
            st.caption(record.message.splitlines()[0])
        return
    st.markdown(
        f"**Write-audit-publish on Nessie** {outcome_label(record)} · branch `{record.branch}` · "
        f"{OUTCOME_TEXT.get(record.outcome, record.outcome)}"
    )
    rows = {
        "main when the branch was cut": record.main_hash_before,
        f"branch {record.branch} after the build": record.branch_hash,
        "main afterwards": record.main_hash_after,
    }
    st.dataframe(
        {"commit": list(rows), "hash": [value or "—" for value in rows.values()]},
        hide_index=True,
        key=f"{key}_commits",
    )
    if record.branch_deleted is not None:
        st.caption(
            "The branch was deleted after the run."
            if record.branch_deleted
            else f"The branch `{record.branch}` could not be deleted; remove it in Nessie."
        )
    if record.message and not record.published:
        st.caption(record.message.splitlines()[0])
