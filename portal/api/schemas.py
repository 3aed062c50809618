"""The API's request and response models: what /openapi.json documents.

A response model over one of the service's own objects reads it (`from_attributes`): routes call
`Model.model_validate(obj)`, nested models included, so routes stay a few lines and the fields of
the UI and the API come from the same values. Only what the API renames or computes is spelled
out here, next to its field (an alias, a validator).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, field_validator

from catalog_db.models import DataProduct
from portal.catalog.browse import Found
from portal.catalog.detail import ProductDetail
from portal.creation.consumers import EXPOSURE_TYPES, MATURITIES, ConsumerRequest
from portal.creation.spec import MATERIALIZATIONS, UPDATE_FREQUENCIES, ProductSpec, name_from_display
from portal.observability.health import ProductHealth
from portal.observability.profile import ColumnProfile
from portal.project.statuses import HEALTH_LEVELS, LISTED_LIFECYCLES
from portal.project.versions import is_past

# --- errors --------------------------------------------------------------------------------


class Position(BaseModel):
    line: int = Field(description="1-based line in the field's text")
    column: int = Field(description="1-based column in that line")


class FieldError(BaseModel):
    field: str = Field(description="The request field at fault, e.g. `source_query` or `limit`.")
    message: str = Field(description="What is wrong and how to fix it.")
    position: Position | None = Field(
        default=None, description="Where in the field's text (SQL), when known."
    )


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, served as `application/problem+json` for every error."""

    type: str = Field(description="A URI naming the kind of problem, e.g. `urn:asgard:problem:validation`.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request and what to do about it.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] = Field(default_factory=list, description="Each field or SQL position at fault.")


# --- products ------------------------------------------------------------------------------


class HealthOut(BaseModel):
    """The product's health now, judged by the one rule the catalog and the Health page use."""

    model_config = ConfigDict(from_attributes=True)

    level: str = Field(description=f"One of {', '.join(HEALTH_LEVELS)} (worst first).")
    problems: list[str] = Field(description="What is wrong, worst first, in words; empty when healthy.")
    build_status: str | None = Field(description="The model's newest build result where consumers read it.")
    tests_passed: int
    tests_failed: int
    tests_warned: int
    freshness: str = Field(
        description="fresh, late, stale or unknown, against the promised update frequency."
    )
    open_drift: int
    last_refreshed: datetime | None = None
    row_count: int | None = None

    @classmethod
    def from_health(cls, judged: ProductHealth) -> HealthOut:
        out = cls.model_validate(judged.health)
        return out.model_copy(
            update={"last_refreshed": judged.last_refreshed, "row_count": judged.entry.row_count}
        )


class ModelVersionOut(BaseModel):
    """One version of a versioned dbt model (dbt keeps a node per version; the catalog, one entry)."""

    model_config = ConfigDict(from_attributes=True)

    version: str = Field(description="As dbt's YAML names it, e.g. `2`.")
    unique_id: str = Field(description="dbt's node of this version, e.g. `model.shop.orders.v2`.")
    relation_name: str | None
    latest: bool = Field(description="dbt's `latest_version`: what an unpinned `ref()` reads.")
    prerelease: bool = Field(description="Newer than the latest: only `ref(..., v=)` reads it.")
    deprecation_date: datetime | None

    @computed_field(description="Past its deprecation_date now.")  # type: ignore[prop-decorator]
    @property
    def deprecated(self) -> bool:
        return is_past(self.deprecation_date)


class MatchOut(BaseModel):
    """Why a search found a product: one of its texts that holds a search word."""

    model_config = ConfigDict(from_attributes=True)

    field: str = Field(
        description="name, description, column, column description, dbt tag, label, owner or type."
    )
    text: str = Field(description="The text, or a snippet of a long one around the first word.")
    spans: list[tuple[int, int]] = Field(description="[start, end) of each search word in `text`.")
    of: str | None = Field(None, description="The column, for a column description.")


class ProductOut(BaseModel):
    """A catalog entry: what the catalog page lists."""

    model_config = ConfigDict(from_attributes=True)

    name: str = Field(description="The dbt model name, also the product's id in URLs.")
    unique_id: str | None
    description: str
    data_product_type: str | None
    owner: str | None
    consumers: list[str]
    update_frequency: str | None
    tags: list[str] = Field(description="dbt's tags (config.tags): what the selector `tag:` selects.")
    labels: list[str] = Field(
        default_factory=list, description="The portal's labels (meta.tags), which dbt's selectors do not see."
    )
    # A registration row calls it `status`; the catalog entry, `lifecycle`.
    lifecycle: str = Field(
        validation_alias=AliasChoices("lifecycle", "status"),
        description=f"Where the product is in its life: {', '.join(LISTED_LIFECYCLES)}.",
    )
    materialization: str | None
    relation_name: str | None
    versions: list[ModelVersionOut] = Field(
        default_factory=list,
        description="A versioned dbt model's versions, oldest first (the product is the latest); "
        "empty for an unversioned one.",
    )
    health: HealthOut | None = Field(None, description="null while the product is being created.")

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated: `lifecycle`, under the name it had before health got its own field.",
        deprecated=True,
    )
    @property
    def status(self) -> str:
        return self.lifecycle

    @field_validator("consumers", "tags", "labels", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @classmethod
    def from_entry(cls, judged: ProductHealth) -> ProductOut:
        return cls.model_validate(judged.entry).model_copy(update={"health": HealthOut.from_health(judged)})

    @classmethod
    def from_registration(cls, row: DataProduct) -> ProductOut:
        """A product the manifest does not know yet (being created): its registration only, whose
        tags are the form's, its labels (meta.tags); dbt's own tags come with the manifest."""
        return cls.model_validate(row).model_copy(update={"tags": [], "labels": list(row.tags or [])})


class ProductListItem(ProductOut):
    matched: list[MatchOut] | None = Field(
        None, description="With `search`: each of the product's texts holding a search word. Else null."
    )

    @classmethod
    def from_found(cls, found: Found, searched: bool) -> ProductListItem:
        matched = [MatchOut.model_validate(m) for m in found.matched] if searched else None
        return cls(**ProductOut.from_entry(found.item).model_dump(exclude={"status"}), matched=matched)


class ProductPage(BaseModel):
    items: list[ProductListItem]
    total: int = Field(description="How many products match, over all pages.")
    limit: int
    offset: int


class ColumnOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    type: str | None
    description: str
    tests: list[str]


class TestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unique_id: str
    name: str
    column: str | None = Field(validation_alias=AliasChoices("column", "column_name"))
    status: str | None = Field(description="pass, fail, warn, error, or null if never run")
    failures: int | None
    message: str | None
    executed_at: datetime | None


class ProductDetailOut(ProductOut):
    """Everything about one product: metadata, columns, tests, health and SQL."""

    columns: list[ColumnOut]
    tests: list[TestOut]
    group_owner: str | None
    created_by: str | None
    raw_sql: str | None
    compiled_sql: str | None

    @classmethod
    def from_detail(cls, detail: ProductDetail, row: DataProduct | None) -> ProductDetailOut:
        return cls(
            **ProductOut.from_entry(detail.health).model_dump(exclude={"status"}),
            columns=[ColumnOut.model_validate(c) for c in detail.columns],
            tests=[TestOut.model_validate(t) for t in detail.tests],
            group_owner=detail.group_owner,
            created_by=row.created_by if row is not None else None,
            raw_sql=detail.raw_sql,
            compiled_sql=detail.compiled_sql,
        )

    @classmethod
    def from_registration_only(cls, row: DataProduct) -> ProductDetailOut:
        return cls(
            **ProductOut.from_registration(row).model_dump(exclude={"status"}),
            columns=[],
            tests=[],
            group_owner=None,
            created_by=row.created_by,
            raw_sql=None,
            compiled_sql=None,
        )


class ProductCreate(BaseModel):
    """A new data product, as the creation form describes it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description='Display name ("My Data Product") or model name; the model name is derived from it '
        "(`dp_my_data_product`).",
        examples=["My Data Product"],
    )
    description: str = Field(examples=["Custom analytics dataset"])
    data_product_type: str = Field("CUSTOM", examples=["CUSTOM"])
    owner: str = Field(examples=["my-team"])
    source_query: str = Field(
        description="One SELECT over the warehouse's own names (`silver.orders` on DuckDB, "
        "`nessie.silver.orders` on Trino) or dbt model names; it is rewritten to ref()/source().",
        examples=["SELECT * FROM silver.orders"],
    )
    consumers: list[str] = Field(default_factory=list)
    update_frequency: str = Field("daily", description=f"One of {', '.join(UPDATE_FREQUENCIES)}.")
    tags: list[str] = Field(default_factory=list)
    primary_key: list[str] | None = Field(
        None,
        description="Columns identifying a row. Omitted: the first id-like column that is unique and "
        "never null in the query's current result.",
    )
    materialization: str = Field("table", description=f"One of {', '.join(MATERIALIZATIONS)}.")
    column_descriptions: dict[str, str] = Field(default_factory=dict)

    def to_spec(self) -> ProductSpec:
        """Raises ValueError when the display name has no letters or digits."""
        return ProductSpec(
            name=name_from_display(self.name),
            description=self.description,
            data_product_type=self.data_product_type,
            owner=self.owner,
            consumers=self.consumers,
            update_frequency=self.update_frequency,
            tags=self.tags,
            primary_key=self.primary_key or (),
            materialization=self.materialization,
            sql=self.source_query,
            column_descriptions=self.column_descriptions,
        )

    @classmethod
    def from_spec(cls, spec: ProductSpec) -> ProductCreate:
        """The body that creates `spec` (a contract's pre-filled fields, its SQL still to write)."""
        return cls(
            name=spec.name,
            description=spec.description,
            data_product_type=spec.data_product_type,
            owner=spec.owner,
            source_query=spec.sql,
            consumers=list(spec.consumers),
            update_frequency=spec.update_frequency,
            tags=list(spec.tags),
            primary_key=list(spec.primary_key) or None,
            materialization=spec.materialization,
            column_descriptions=dict(spec.column_descriptions),
        )


class ContractIn(BaseModel):
    """An ODCS v3 data contract, as YAML (or JSON) text."""

    model_config = ConfigDict(extra="forbid")

    # No maxLength here: the API's body limit answers 413 first, and the core caps a contract.
    contract: str = Field(
        description="The contract's YAML text, e.g. one `GET /api/v1/data-products/{id}/contract` served.",
        examples=["apiVersion: v3.2.0\nkind: DataContract\nid: my-contract\nversion: 1.0.0\nstatus: draft\n"],
    )


class ProductPatch(BaseModel):
    """The fields to change; the others keep their current values. A product cannot be renamed."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    data_product_type: str | None = None
    owner: str | None = None
    source_query: str | None = None
    consumers: list[str] | None = None
    update_frequency: str | None = None
    tags: list[str] | None = None
    primary_key: list[str] | None = None
    materialization: str | None = None
    column_descriptions: dict[str, str] | None = None

    def changes(self) -> dict[str, Any]:
        """The changed fields under the ProductSpec's names."""
        given = self.model_dump(exclude_none=True)
        if "source_query" in given:
            given["sql"] = given.pop("source_query")
        return given


# --- consumers (dbt exposures) --------------------------------------------------------------

ExposureType = Literal["dashboard", "notebook", "analysis", "ml", "application"]
Maturity = Literal["high", "medium", "low"]
assert get_args(ExposureType) == EXPOSURE_TYPES and get_args(Maturity) == MATURITIES


class ConsumerIn(BaseModel):
    """A team that reads the product registers it; the portal writes it as a dbt exposure."""

    model_config = ConfigDict(extra="forbid")

    owner_name: str = Field(description="The consuming team (a team name, e.g. finance-bi).")
    owner_email: str = Field(description="The team's contact address.")
    description: str = Field(description="What the product is used for.")
    url: str = Field(description="The dashboard's or job's http(s) address.")
    type: ExposureType = Field(default="dashboard", description="dbt's exposure type.")
    maturity: Maturity = Field(default="medium", description="dbt's exposure maturity.")
    name: str | None = Field(
        default=None,
        description="The exposure's name (a dbt identifier, unique in the project); empty: derived from "
        "the team and the product, e.g. finance_bi_dp_revenue_analytics.",
    )

    def to_request(self) -> ConsumerRequest:
        return ConsumerRequest(**self.model_dump())


class ConsumerOut(BaseModel):
    """A dbt exposure that reads the product."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    unique_id: str
    product: str
    type: str
    maturity: str | None
    owner_name: str | None
    owner_email: str | None
    url: str | None
    description: str
    registered_by: str | None = Field(description="Who registered it in the portal; null: written by hand.")
    registered_at: str | None
    path: str = Field(description="Its file, relative to the dbt project.")
    registered_here: bool = Field(description="Written by the portal, so it can be removed through it.")


# --- runs ----------------------------------------------------------------------------------


class RunRef(BaseModel):
    id: int
    status: str
    url: str


class PublishOut(BaseModel):
    """Where a creation run was audited and what became of it (write-audit-publish)."""

    model_config = ConfigDict(from_attributes=True)

    engine: str = Field(description="duckdb (audit schema) or nessie (branch)")
    published: bool
    outcome: str = Field(
        description="running, in_review (held for a reviewer), published, failed, conflict or error"
    )
    summary: str = Field(
        description="One line for people, e.g. `Nessie branch `wap-r7-…`: merged into main (…)`"
    )
    audit_schema: str | None = Field(description="DuckDB: the schema the build was audited in.")
    branch: str | None = Field(description="Nessie: the branch the build and its tests ran on.")
    main_hash_before: str | None = Field(description="Nessie: main's commit the branch was cut from.")
    branch_hash: str | None = Field(description="Nessie: the branch's head after the build.")
    main_hash_after: str | None = Field(
        description="Nessie: main afterwards (the merge commit, or unchanged)."
    )
    branch_deleted: bool | None
    message: str | None

    @field_validator("summary", mode="before")
    @classmethod
    def _summarise(cls, value: Any) -> Any:
        """A `PublishRecord` gives its summary by a method: call it."""
        return value() if callable(value) else value


class RunSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    command: str
    selector: str | None
    triggered_by: str
    started_at: datetime
    finished_at: datetime | None
    elapsed_s: float | None
    models: int
    tests: int
    failed: int
    publish: PublishOut | None = Field(default=None, description="Creation runs: write-audit-publish.")


class ChangeOut(BaseModel):
    """One recorded change of a product: who (with the teams they had then), what, when."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str = Field(description="Who asked: the signed-in user, the token's holder or the local user.")
    teams: list[str] = Field(description="The teams (groups) the actor had when they asked.")
    action: str = Field(
        description="e.g. product.created, product.edited, product.deprecated, run.requested."
    )
    detail: dict[str, Any] = Field(description="What changed, as the audit trail recorded it.")


class ProposalOut(BaseModel):
    """A product change as a git commit in the project's own repository, and what became of it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    product: str
    action: str = Field(description="product.created, product.edited or product.deprecated.")
    branch: str = Field(description="The proposal's branch, `product/<name>/<run id>`.")
    commit_sha: str
    base_sha: str = Field(description="main when the proposal was made.")
    author: str
    state: str = Field(
        description="open (being built), in_review (built and tested, waiting for a reviewer), published "
        "(merged into main), failed, rejected (see comment), expired, stale (main changed what it was "
        "built on: resubmit), superseded (a newer proposal replaced it), discarded."
    )
    run_id: int | None
    merged_sha: str | None = Field(description="main after the merge, once published.")
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None = Field(description="The reviewer who approved or rejected it.")
    comment: str | None = Field(description="The reviewer's comment: a rejection says why.")


class FileChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    status: Literal["added", "modified", "deleted"]
    before: str | None = Field(description="The file on main before the proposal; null if added.")
    after: str | None = Field(description="The file as proposed; null if deleted.")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=4000, description="The reviewer's words, kept with it.")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(
        min_length=1,
        max_length=4000,
        description="Why: its author reads it to fix the proposal and resubmit.",
    )


class DecisionOut(BaseModel):
    """A reviewer's decision: the proposal as it is now, and what happened in words."""

    proposal: ProposalOut
    message: str
    row_count: int | None = Field(default=None, description="The published product's rows, on approval.")

    @classmethod
    def of(cls, decision: Any) -> DecisionOut:
        return cls(
            proposal=ProposalOut.model_validate(decision.proposal),
            message=decision.message,
            row_count=decision.row_count,
        )


class ColumnChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    change: Literal["added", "removed", "retyped", "unchanged"]
    before_type: str | None
    after_type: str | None


class SchemaDiffOut(BaseModel):
    """The proposal's columns against the published version's, and its contract's changes."""

    model_config = ConfigDict(from_attributes=True)

    columns: list[ColumnChangeOut]
    added: list[str]
    removed: list[str]
    retyped: list[str]
    contract: list[str] = Field(
        description="One sentence per change of the YAML contract (keys, tests, types)."
    )


class DataDiffOut(BaseModel):
    """The held data against what consumers read: counts, and samples of each kind of change."""

    model_config = ConfigDict(from_attributes=True)

    before: str | None = Field(description="The published relation; null for a new product.")
    after: str = Field(description="Where the proposal's data is held (audit schema or Nessie branch).")
    key: list[str] = Field(description="The primary key rows were matched on; empty: compared whole.")
    compared: list[str]
    left_out: list[str] = Field(description="Columns of one version only (see the schema diff).")
    notes: list[str]
    rows_before: int
    rows_after: int
    added: int | None
    removed: int | None
    changed: int | None = Field(description="Same key, other values; null without a key.")
    unchanged: int | None
    samples: list[dict[str, Any]] = Field(
        description='Example rows: {"change": added|removed|changed, "key", "before", "after", "columns"}.'
    )


class ColumnOriginsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    column: str
    upstream: list[str] = Field(description="The upstream columns it is computed from, `model.column`.")
    untraceable: str | None


class ImpactedOut(BaseModel):
    """A node downstream of the product: it reads the product now."""

    model_config = ConfigDict(from_attributes=True)

    unique_id: str
    name: str
    kind: str = Field(
        description="data_product, or its resource type: model, exposure, metric, semantic_model, ..."
    )
    owner: str | None
    consumers: list[str]
    distance: int


class ReviewOut(BaseModel):
    """What a reviewer sees before deciding (portal/creation/review_detail.py)."""

    schema_diff: SchemaDiffOut | None = Field(description="Null when the proposal's data is not held.")
    data_diff: DataDiffOut | None = Field(description="Null when the proposal's data is not held.")
    lineage: list[ColumnOriginsOut] = Field(
        description="Each column of the draft SQL and where it comes from."
    )
    impact: list[ImpactedOut] = Field(
        description="Every node downstream (products, exposures, models, metrics), nearest first."
    )
    tests: list[NodeTimingOut] = Field(
        description="The audit build's model and tests as its run recorded them."
    )
    stale: str | None = Field(description="Why main moved on under it, when it did: approval is refused.")
    may_decide: bool = Field(description="Whether the caller may approve or reject it.")
    refusal: str | None = Field(description="Why the caller may not, when they may not.")
    missing: dict[str, str] = Field(description="Parts not shown, with the reason.")


class ProposalDetailOut(ProposalOut):
    files: list[FileChangeOut] = Field(description="Every file the proposal changes, before and after.")
    review: ReviewOut


class NodeTimingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unique_id: str
    name: str
    resource_type: str
    status: str
    execution_time_s: float = Field(validation_alias=AliasChoices("execution_time_s", "execution_time"))
    message: str | None


class RunOut(BaseModel):
    """A run: status, every node's timing (slowest first) and the end of dbt's log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str = Field(description="queued, running, success, partial or error")
    finished: bool
    command: str
    selector: str | None
    target: str | None
    triggered_by: str
    product: str | None
    started_at: datetime
    finished_at: datetime | None
    elapsed_s: float | None
    invocation_id: str | None
    nodes: list[NodeTimingOut]
    log_tail: str
    publish: PublishOut | None = Field(default=None, description="Creation runs: write-audit-publish.")


class NodeOutcomeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unique_id: str
    resource_type: str
    name: str
    column: str | None
    status: str
    message: str | None
    failures: int | None


# accepted/queued: started (202); the rest: a creation's or a refresh's outcome, when the call waited.
SubmissionState = Literal[
    "accepted",
    "queued",
    "in_review",
    "published",
    "failed",
    "restored",
    "unchanged",
    "success",
    "partial",
    "error",
]


class Submitted(BaseModel):
    """The answer to a create, edit or refresh: the product and the run to follow."""

    product: ProductOut
    run: RunRef | None = Field(
        description="The run building it (a creation's run also while queued); null while a refresh is queued."
    )
    state: SubmissionState = Field(
        description="accepted or queued (202: follow the run), or the outcome when the call waited "
        "(unchanged: the edit changed nothing, so nothing was built; in_review: built and tested, it "
        "waits for a reviewer: see `proposal`)"
    )
    proposal: int | None = Field(
        default=None, description="The change's proposal (GET /api/v1/proposals/{id}), when one was made."
    )
    primary_key: list[str] | None = Field(
        default=None, description="The key used, when the portal inferred it."
    )
    outcomes: list[NodeOutcomeOut] = Field(
        default_factory=list, description="The model and each test of the build, when the call waited."
    )
    message: str = ""


# --- data ----------------------------------------------------------------------------------


class QueryResult(BaseModel):
    product: str
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="One object per row, column name to value.")
    returned_rows: int
    total_rows: int = Field(description="Rows matching the filters, over all pages.")
    limit: int
    truncated: bool
    elapsed_ms: float


class LineageNode(BaseModel):
    unique_id: str
    name: str
    label: str
    resource_type: str
    layer: str | None
    is_data_product: bool
    owner: str | None
    status: str | None
    failing_tests: int


class LineageEdge(BaseModel):
    source: str = Field(description="The upstream node's unique id.")
    target: str = Field(description="The downstream node's unique id.")


class LineageOut(BaseModel):
    focus: str = Field(description="The product's unique id.")
    upstream: int | None
    downstream: int | None
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class SchemaOut(BaseModel):
    name: str
    relation_name: str | None
    materialization: str | None
    contract_enforced: bool
    primary_key: list[str]
    columns: list[ColumnOut]


class FreshnessOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: str = Field(description="fresh, late, stale or unknown")
    update_frequency: str | None
    newest: datetime | None
    age_s: float | None = Field(validation_alias=AliasChoices("age_s", "age"))
    reason: str

    @field_validator("age_s", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        """`Freshness.age` is a timedelta; the API gives it in seconds."""
        return value.total_seconds() if isinstance(value, timedelta) else value


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: str
    measured_at: datetime
    row_count: int | None
    primary_key: list[str]
    duplicate_keys: int | None
    newest_update: datetime | None
    columns: list[dict[str, Any]] = Field(
        description="Per column: nulls, null_rate, distinct, min, max, mean, ..."
    )
    summary: str

    @field_validator("columns", mode="before")
    @classmethod
    def _column_json(cls, value: Any) -> Any:
        """A `Profile`'s columns are `ColumnProfile`s; the API gives each as its JSON object."""
        return [c.to_json() if isinstance(c, ColumnProfile) else c for c in value]


class DriftOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    change: str
    column: str | None
    description: str
    detected_at: datetime


class QualityOut(BaseModel):
    """The latest test results and metrics of a product."""

    name: str
    health: HealthOut
    tests: list[TestOut]
    freshness: FreshnessOut
    profile: ProfileOut | None
    open_drift: list[DriftOut]


# --- system --------------------------------------------------------------------------------


class HealthCheck(BaseModel):
    name: str
    ok: bool
    detail: str | None = Field(
        default=None, description="What was found, or why it failed; only for callers with a token."
    )


class SystemHealth(BaseModel):
    status: Literal["ok", "degraded"]
    checks: list[HealthCheck]


class VersionOut(BaseModel):
    portal: str
    api: str
    python: str
    dbt_core: str | None
    warehouse: str


class AccessRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=2000, description="What the access is for, so its owners can decide.")
    days: int = Field(ge=1, le=3650, description="How long, from approval (at most PORTAL_ACCESS_MAX_DAYS).")


class AccessOut(BaseModel):
    """An access request as both sides see it; `live` while the access it grants holds."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    product: str
    requester: str
    reason: str
    days: int
    state: str = Field(description="pending, approved, refused, withdrawn or revoked.")
    shown_state: str = Field(description="The state, with an approved grant past its days as `expired`.")
    live: bool
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    expires_at: datetime | None
    enforced: bool = Field(
        default=False, description="Whether the warehouse enforces it (Trino rules of a restricted product)."
    )
