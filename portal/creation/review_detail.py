"""What a reviewer sees of a proposal before deciding: one `Review`, the same for the Review page
and `GET /api/v1/proposals/{id}`.

- the **files**: the proposal's commit against main as it was then (SQL and YAML);
- the **schema diff** (portal/creation/review_schema.py): the columns of the held build against
  the published relation, and the contract the YAML declares, before and after;
- the **data diff** (portal/creation/review_diff.py): row counts, rows added, removed and changed
  by primary key, and samples, of the held build against what consumers read (audit vs gold on
  DuckDB, the Nessie branch vs main on Trino); only while its data is held;
- the **column lineage** of the draft SQL (each column's upstream columns, from the audit build's
  manifest) and the **downstream impact**: the products and exposures, with their owners, that
  read the product now;
- the **tests** of the audit build, as its run recorded them;
- whether main moved on under it (**stale**), and whether the caller may decide.

Every part that needs the warehouse or git says why it is missing instead of failing the review.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog_db.models import Proposal
from portal.auth.identity import Identity
from portal.creation import commits, held, review
from portal.creation.publish.registry import publisher_for
from portal.creation.review_diff import DataDiff, data_diff
from portal.creation.review_schema import SchemaDiff, schema_diff
from portal.errors import PortalError
from portal.lineage.columns import ColumnTracer
from portal.lineage.graph import Impacted, impact
from portal.observability.profile import primary_key
from portal.project.artifacts import Manifest, Node
from portal.project.repository import FileChange, ProjectRepository
from portal.runs import NodeTiming, run_timings
from portal.service import PortalService
from portal.warehouse import RelationMissing, open_warehouse

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class ColumnOrigins:
    """One column of the draft and the upstream columns it is computed from (`model.column`)."""

    column: str
    upstream: list[str]
    untraceable: str | None = None  # why it could not be traced all the way, when it could not


@dataclass(frozen=True)
class Review:
    proposal: Proposal
    files: list[FileChange]
    tests: list[NodeTiming]
    schema: SchemaDiff | None = None
    data: DataDiff | None = None
    lineage: list[ColumnOrigins] = field(default_factory=list)
    impact: list[Impacted] = field(default_factory=list)
    stale: str | None = None  # why main moved on under it, when it did
    refusal: str | None = None  # why the caller may not decide on it, or None when they may
    missing: dict[str, str] = field(default_factory=dict)  # part -> why it is not shown

    @property
    def open(self) -> bool:
        return self.proposal.state in commits.OPEN_REVIEW


def review_of(service: PortalService, proposal_id: int, identity: Identity) -> Review:
    """The review of one proposal, as `identity` sees it (see the module docstring)."""
    proposal = review.get(service, proposal_id)
    repo = ProjectRepository(service.settings.dbt_project_dir)  # reading asks no remote
    missing: dict[str, str] = {}
    try:
        files = repo.changes(proposal.base_sha, proposal.commit_sha)
    except PortalError as exc:
        files, missing["files"] = [], str(exc)
    tests = run_timings(service, proposal.run_id, kinds=("test", "model")) if proposal.run_id else []
    open_ = proposal.state in commits.OPEN_REVIEW
    stale = (
        "Main changed what it was built on; its author resubmits it." if proposal.state == "stale" else None
    )
    if open_ and stale is None:
        try:
            stale = review.stale_reason(service, repo, proposal)
        except PortalError as exc:
            missing["stale"] = str(exc)
    # The audit build's manifest holds the draft: read once for the diffs' key and the lineage.
    manifest = review.audit_manifest(service, proposal.product)
    node = next((n for n in manifest.models() if n.name == proposal.product), None) if manifest else None
    schema, data = _diffs(service, proposal, files, manifest, node, missing) if open_ else (None, None)
    if not open_:
        missing["data"] = (
            f"The proposal is {proposal.state}: its data is no longer held, so there is nothing to compare."
        )
    return Review(
        proposal=proposal,
        files=files,
        tests=sorted(tests, key=lambda t: (t.resource_type != "model", t.name)),
        schema=schema,
        data=data,
        lineage=_lineage(service, manifest, node),
        impact=_impact(service, proposal.product),
        stale=stale,
        refusal=review.refusal(service, proposal, identity) if open_ else f"It is {proposal.state}.",
        missing=missing,
    )


def _yml(files: list[FileChange]) -> tuple[str | None, str | None]:
    change = next((f for f in files if f.path.endswith(".yml")), None)
    return (change.before, change.after) if change else (None, None)


def _diffs(
    service: PortalService,
    proposal: Proposal,
    files: list[FileChange],
    manifest: Manifest | None,
    node: Node | None,
    missing: dict[str, str],
) -> tuple[SchemaDiff | None, DataDiff | None]:
    """The schema and data diff of the held build against the published version."""
    publisher = publisher_for(service.settings)
    warehouse = open_warehouse(service.settings)  # the portal's own reader: held data is not the caller's
    with service.sessions() as session:
        record = held.record_of(session, proposal)
    before_yml, after_yml = _yml(files)
    published = publisher.published_relation(proposal.product)
    key = primary_key(manifest, node) if manifest is not None and node is not None else ()
    try:
        with publisher.held_relation(proposal.product, record) as relation:
            after_columns = warehouse.columns(relation)
            try:
                before_columns = warehouse.columns(published)
                before = published
            except RelationMissing:
                before_columns, before = None, None  # never published: every column and row is new
            schema = schema_diff(before_columns, after_columns, before_yml=before_yml, after_yml=after_yml)
            data = data_diff(warehouse, before, relation, key=key, sample=SAMPLE_ROWS)
    except PortalError as exc:
        missing["data"] = f"The held data could not be compared: {exc}"
        return None, None
    return schema, data


def _lineage(service: PortalService, manifest: Manifest | None, node: Node | None) -> list[ColumnOrigins]:
    """Each column of the draft with the upstream columns it comes from (its audit manifest)."""
    if manifest is None or node is None:
        return []
    tracer = ColumnTracer(manifest, service.artifacts().catalog)  # upstream columns as built
    found = []
    for column in node.columns or tracer.known_columns(node.unique_id):
        try:
            traced = tracer.trace(node.unique_id, column, max_depth=1)
        except PortalError as exc:
            found.append(ColumnOrigins(column, [], str(exc)))
            continue
        upstream = [f"{ref.unique_id.split('.')[-1]}.{ref.column}" for ref in traced.columns]
        why = "; ".join(u.reason for u in traced.untraceable) or None
        found.append(ColumnOrigins(column, upstream, why))
    return found


def _impact(service: PortalService, name: str) -> list[Impacted]:
    """What reads the product now: downstream products and exposures (none for a new product)."""
    lineage = service.lineage()
    uid = next((n.unique_id for n in lineage.manifest.models() if n.name == name), None)
    if uid is None or uid not in lineage.graph:
        return []
    return impact(lineage.graph, uid)


__all__ = ["ColumnOrigins", "Review", "review_of"]
