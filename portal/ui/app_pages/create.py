"""Create: SQL and metadata in; a validated, generated, tested and published data product out.

Everything that decides anything is in `portal.creation.flow`; this page only collects the form,
shows what the core returns, and streams the build into `st.status`. `?edit=<name>` opens an
existing portal product for editing (and deprecating).
"""

from __future__ import annotations

import contextlib

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from portal.auth.access import why_not
from portal.contracts.odcs import spec_from_contract
from portal.creation import flow as creation
from portal.creation.dry_run import SAMPLE_ROWS
from portal.creation.lifecycle import deprecate, discard, orphans, spec_of
from portal.creation.spec import (
    MATERIALIZATIONS,
    NAME_RE,
    UPDATE_FREQUENCIES,
    ProductSpec,
    name_from_display,
)
from portal.errors import InvalidInput
from portal.runs import registration
from portal.ui.components.context import attempt, current_identity, get_service
from portal.ui.components.problems import show_problems
from portal.ui.components.product_actions import CATALOG_FLASH, run_lifecycle
from portal.ui.components.publish import render_publish

service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()
identity = current_identity()
refusal = why_not(identity, "create")  # the page is hidden from viewers; this is for a direct link
if refusal:
    st.warning(refusal, icon=":material/lock:")
    st.stop()
editing = st.query_params.get("edit")
st.title(f"Edit {editing}" if editing else "Create a data product")
# The core refuses an edit by someone who may not make it; the page says so before they type.
edit_refusal = why_not(identity, "edit", registration(service, editing)) if editing else None
if edit_refusal:
    st.warning(edit_refusal, icon=":material/lock:")

leftovers = attempt(lambda: orphans(service)) or []
if leftovers:
    st.warning(
        "**An interrupted creation left files behind.** Discard the product or create it again:\n"
        + "\n".join(f"- `{orphan.path.name}`: {orphan.reason}" for orphan in leftovers),
        icon=":material/warning:",
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())


def _column_docs(text: str) -> dict[str, str]:
    """`column: description` lines. A line without a colon is kept whole as the column, so the
    core's column check names it rather than the page dropping it silently."""
    docs = {}
    for line in text.splitlines():
        column, _, description = line.partition(":")
        if column.strip():
            docs[column.strip()] = description.strip()
    return docs


def _load_for_edit(name: str, proposal_id: int | None) -> None:
    """Fill the form from the product's files (or a proposal's draft), once per one opened."""
    source = f"{name}@{proposal_id}" if proposal_id is not None else name
    if st.session_state.get("create_loaded") == source:
        return
    loaded = attempt(lambda: spec_of(service, name, proposal_id=proposal_id))
    if loaded is None:
        return
    st.session_state.update(
        create_name=loaded.name,
        create_description=loaded.description,
        create_type=loaded.data_product_type,
        create_owner=loaded.owner,
        create_consumers=", ".join(loaded.consumers),
        create_frequency=loaded.update_frequency,
        create_tags=", ".join(loaded.tags),
        create_primary_key=", ".join(loaded.primary_key),
        create_materialization=loaded.materialization,
        create_sql=loaded.sql,
        create_column_docs="\n".join(f"{c}: {d}" for c, d in loaded.column_descriptions.items()),
        create_loaded=source,
    )


# ?proposal=N: resubmit that proposal's draft (stale, rejected or expired), not main's version.
draft = st.query_params.get("proposal")
draft_id = int(draft) if draft and draft.isdigit() else None
if draft and draft_id is None:
    st.warning(f"`?proposal={draft}` is no proposal number; the form holds the version on main.")
if editing:
    _load_for_edit(editing, draft_id)
    if draft_id is not None:
        st.caption(
            f"Filled from proposal {draft_id}'s draft, not from the version on main: change what it "
            "needs and submit it again."
        )
# A query the SQL workspace promoted (its Promote leaves it here): taken once, as the form's defaults.
promotion = st.session_state.pop("workspace_promotion", None)
if promotion is not None and not editing:
    st.session_state.update(create_sql=promotion.sql, create_description=promotion.note)


def _fill_from_contract(upload: UploadedFile) -> None:
    """An uploaded ODCS contract's fields as the form's, once per file (the form is the user's
    then); a malformed contract is refused with what is wrong and where, and fills nothing."""
    if st.session_state.get("create_contract_applied") == upload.file_id:
        return
    st.session_state["create_contract_applied"] = upload.file_id
    try:
        filled = spec_from_contract(upload.getvalue())
    except InvalidInput as refused:
        st.session_state["create_contract_problems"] = refused.problems
        return
    st.session_state.pop("create_contract_problems", None)
    values = {
        "create_name": filled.name,
        "create_description": filled.description,
        "create_owner": filled.owner,
        "create_consumers": ", ".join(filled.consumers),
        "create_frequency": filled.update_frequency,
        "create_tags": ", ".join(filled.tags),
        "create_primary_key": ", ".join(filled.primary_key),
        "create_materialization": filled.materialization,
        "create_column_docs": "\n".join(f"{c}: {d}" for c, d in filled.column_descriptions.items()),
    }
    if filled.data_product_type in creation.product_types(service):
        values["create_type"] = filled.data_product_type
    st.session_state.update({k: v for k, v in values.items() if v})


if not editing:
    with st.expander("Start from a data contract (ODCS)", icon=":material/contract:"):
        upload = st.file_uploader(
            "ODCS v3 contract (YAML)",
            type=["yaml", "yml", "json"],
            key="create_contract",
            help="Fills the name, description, type, owner, consumers, frequency, tags, primary key and "
            "column descriptions below; the SQL is yours to write. A product page's contract download works.",
        )
        if upload is not None:
            _fill_from_contract(upload)
            problems = st.session_state.get("create_contract_problems")
            if problems:
                show_problems(problems, "")
            else:
                st.success(f"Filled from `{upload.name}`: check the fields, then write the SQL.")
# Teams are owners: the core says whom this user may give the product to (None: anyone).
teams = creation.owner_choices(identity) or ()
st.session_state.setdefault("create_owner", teams[0] if teams else identity.user)

# A code editor's look for the SQL box, without a component that needs the network.
st.markdown("<style>.st-key-create_sql textarea {font-family: monospace;}</style>", unsafe_allow_html=True)

name = st.text_input(
    "Name",
    key="create_name",
    placeholder="dp_customer_orders",
    disabled=bool(editing),
    help="`dp_` and a letter, then lowercase letters, digits and underscores. It becomes the table's name.",
)
if name and not NAME_RE.match(name):
    with contextlib.suppress(InvalidInput):  # no letters to suggest a name from: the check says so
        st.caption(f"Names look like `dp_customer_orders`. Perhaps `{name_from_display(name)}`?")
description = st.text_area(
    "Description (markdown)",
    key="create_description",
    help="What the product holds, its grain (one row per …) and who it is for.",
)
left, right = st.columns(2)
product_type = left.selectbox("Type", creation.product_types(service), key="create_type")
if teams:
    if st.session_state["create_owner"] not in teams:
        st.session_state["create_owner"] = teams[0]
    owner = right.selectbox(
        "Owning team", teams, key="create_owner", help="Its members may edit, refresh and deprecate it."
    )
else:
    owner = right.text_input("Owner", key="create_owner", help="The team or person accountable for it.")
consumers = left.text_input("Consumers", key="create_consumers", placeholder="Marketing, finance@example.com")
frequency = right.selectbox("Update frequency", UPDATE_FREQUENCIES, index=1, key="create_frequency")
tags = left.text_input("Tags", key="create_tags", placeholder="customer, orders")
primary_key = right.text_input(
    "Primary key column(s)",
    key="create_primary_key",
    placeholder="customer_id",
    help="Tested for uniqueness and not-null; comma-separate a composite key.",
)
materialization = st.radio("Materialization", MATERIALIZATIONS, key="create_materialization", horizontal=True)
if materialization == "incremental":
    st.caption("Incremental runs merge new rows on the primary key (its unique key).")
sql = st.text_area(
    "SQL",
    key="create_sql",
    height=260,
    placeholder="select customer_id, count(*) as order_count\nfrom stg_orders\ngroup by customer_id",
    help="One SELECT (CTEs and UNION allowed) over the project's sources and models, by name.",
)
column_docs = st.text_area(
    "Column descriptions (optional)",
    key="create_column_docs",
    placeholder="order_count: Orders that were not cancelled.",
    help="One per line: `column: description`.",
)

spec = ProductSpec(
    name=name.strip(),
    description=description,
    data_product_type=product_type or "",
    owner=owner.strip(),
    consumers=_split(consumers),
    update_frequency=frequency or "",
    tags=_split(tags),
    primary_key=_split(primary_key),
    materialization=materialization or "",
    sql=sql,
    column_descriptions=_column_docs(column_docs),
)


def show_validation(validation: creation.Validation) -> None:
    if validation.problems:
        show_problems(validation.problems, validation.spec.sql)
    else:
        st.success(
            "Everything checks out. Press **Create** to build, test and publish it.", icon=":material/check:"
        )
    if validation.upstream:
        st.subheader("Reads from")
        st.markdown("\n".join(f"- `{unique_id}`" for unique_id in validation.upstream))
        target = validation.spec.name or "new product"
        edges = "\n".join(f'  "{u.split(".")[-1]}" -> "{target}";' for u in validation.upstream)
        st.graphviz_chart(f"digraph {{\n  rankdir=LR; node [shape=box];\n{edges}\n}}")
    if validation.columns is not None:
        st.subheader("Columns")
        st.dataframe(
            pd.DataFrame(validation.columns, columns=["column", "type"]),
            hide_index=True,
            key="create_columns",
        )
    if validation.sample is not None:
        st.subheader(f"First rows (at most {SAMPLE_ROWS})")
        st.dataframe(validation.sample, hide_index=True, key="create_sample")


def show_result(result: creation.CreationResult) -> None:
    if result.status == "refused":
        show_problems(result.problems, result.validation.spec.sql if result.validation else spec.sql)
        return
    if result.status == "unchanged":
        st.info(
            f"**{result.name}** already is what the form says: nothing to rebuild.", icon=":material/check:"
        )
        return
    untouched = (
        "main is untouched" if result.publish and result.publish.engine == "nessie" else "gold is untouched"
    )
    if result.ok:
        rows = f"{result.row_count:,} rows, " if result.row_count is not None else ""
        st.success(
            f"**{result.name}** is published: {rows}the model and all its tests passed ({result.elapsed_s:.0f} s).",
            icon=":material/task_alt:",
        )
        if result.publish:
            render_publish(result.publish, "create_publish")
        if st.button(f"Open {result.name}", key="create_open", icon=":material/inventory_2:"):
            st.switch_page("app_pages/product.py", query_params={"id": result.name})
        return
    if result.status == "in_review":
        st.info(
            f"**{result.name}** passed its build and all its tests ({result.elapsed_s:.0f} s) and waits for a "
            f"reviewer: proposal {result.proposal_id}. Nothing is published until someone else approves it; "
            f"{untouched}.",
            icon=":material/rate_review:",
        )
        if st.button(
            f"Open proposal {result.proposal_id}", key="create_review", icon=":material/rate_review:"
        ):
            st.switch_page("app_pages/review.py", query_params={"proposal": str(result.proposal_id)})
        return
    if result.status == "restored":
        st.warning(
            f"The change to **{result.name}** was not published: the build or a test failed. The published "
            "version is untouched and its files are back. Fix the form and save again.",
            icon=":material/undo:",
        )
    else:
        st.error(
            f"**{result.name}** was not published: the build or a test failed, and {untouched}. Fix the "
            "form and press **Resubmit**, or discard the product.",
            icon=":material/error:",
        )
    if result.publish:
        render_publish(result.publish, "create_publish")
    failed = result.failed_nodes
    if failed:
        st.dataframe(
            pd.DataFrame(
                {
                    "what": [o.name for o in failed],
                    "column": [o.column or "" for o in failed],
                    "status": [o.status for o in failed],
                    "failing rows": [o.failures for o in failed],
                    "message": [o.message or "" for o in failed],
                }
            ),
            hide_index=True,
            key="create_failures",
        )
    with st.expander("dbt log"):
        st.code(result.log, language=None)
    if (
        result.status == "failed"
        and st.button("Discard", key="create_discard", icon=":material/delete:")
        and run_lifecycle(lambda: discard(service, result.name, identity))
    ):
        # The outcome above no longer holds (it said "Resubmit"): the catalog says what happened.
        st.session_state.pop("create_result", None)
        st.session_state[CATALOG_FLASH] = (
            f"Discarded {result.name}: its files are removed and the name is free again."
        )
        st.switch_page("app_pages/catalog.py")


last: creation.CreationResult | None = st.session_state.get("create_result")
# A failed product is resubmitted as an edit of itself.
resubmit = last is not None and last.status == "failed" and last.name == spec.name
target = editing or (spec.name if resubmit else None)
submit_label = "Save changes" if editing else ("Resubmit" if resubmit else "Create")

validate_col, submit_col, deprecate_col = st.columns([1, 1, 3])
if validate_col.button("Validate", key="create_validate", icon=":material/rule:"):
    st.session_state["create_validation"] = attempt(
        lambda: creation.check(service, spec, identity, editing=target)
    )
submitted = submit_col.button(
    submit_label,
    key="create_submit",
    type="primary",
    icon=":material/rocket_launch:",
    disabled=edit_refusal is not None,
    help=edit_refusal,
)
if (
    editing
    and deprecate_col.button(
        "Deprecate", key="create_deprecate", icon=":material/archive:", disabled=edit_refusal is not None
    )
    and run_lifecycle(lambda: deprecate(service, editing, identity))
):
    st.success(f"{editing} is deprecated. Its table stays for its consumers.")

if submitted:
    st.session_state.pop("create_validation", None)
    with st.status(f"{submit_label}: {spec.name or 'unnamed product'} …", expanded=True) as status:
        log_box = st.empty()
        lines: list[str] = []

        def on_line(line: str) -> None:
            if line == creation.WAITING:
                status.update(label="Queued: waiting for another build on this project to finish …")
            elif line.startswith(creation.STAGE):
                status.update(label=line.removeprefix(creation.STAGE))
            lines.append(line)
            log_box.code("\n".join(lines[-40:]), language=None)

        if target:
            result = attempt(lambda: creation.edit(service, target, spec, identity, on_line=on_line))
        else:
            result = attempt(lambda: creation.create(service, spec, identity, on_line=on_line))
        done = result is not None and (result.ok or result.status == "in_review")
        status.update(
            label=f"{spec.name}: {result.status if result else 'error'}",
            state="complete" if done else "error",
            expanded=False,
        )
    st.session_state["create_result"] = result
    if result is not None:  # (None: attempt() has shown the error, which a rerun would wipe)
        st.rerun()  # draw the page again around the outcome (the button now reads Resubmit, say)

validation: creation.Validation | None = st.session_state.get("create_validation")
if validation is not None:
    if validation.spec != spec:
        st.info("The form changed since it was validated. Validate again.", icon=":material/refresh:")
    show_validation(validation)
result_now: creation.CreationResult | None = st.session_state.get("create_result")
if result_now is not None:
    show_result(result_now)
