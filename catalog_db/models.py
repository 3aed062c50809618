"""The catalog database: what dbt does not know about data products.

dbt files say what a product *is*; these tables hold what happens to it: registration and
status, runs and per-node results over time, and an audit trail. Every change to this module
needs a migration in `catalog_db/migrations/versions/` (a test fails when they disagree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# in_review: a new product whose audit passed, waiting for a reviewer; rejected: its proposal was
# rejected (or expired) before it was ever published.
PRODUCT_STATUSES = (
    "draft",
    "building",
    "in_review",
    "published",
    "failed",
    "rejected",
    "deprecated",
    "removed",
)
PRODUCT_ORIGINS = ("dbt", "portal")
RUN_STATUSES = ("queued", "running", "success", "error", "partial")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones and hands back naive values, PostgreSQL hands back the session's
    zone: both come back as UTC-aware here. Naive values are refused instead of being guessed,
    because a local time silently stored as UTC puts run histories out of order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one, e.g. datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    # Deterministic constraint names, so migrations can alter them on SQLite and PostgreSQL alike.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class DataProduct(Base):
    """A registered data product. Descriptive columns mirror the dbt model and are rewritten by sync."""

    __tablename__ = "data_products"
    __table_args__ = (
        CheckConstraint(_one_of("status", PRODUCT_STATUSES), name="status"),
        CheckConstraint(_one_of("origin", PRODUCT_ORIGINS), name="origin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)  # the dbt model name
    unique_id: Mapped[str | None] = mapped_column(unique=True)  # None until dbt has parsed it
    data_product_type: Mapped[str] = mapped_column(default="CUSTOM")
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str | None]  # None when neither meta.owner nor the dbt group names one
    consumers: Mapped[list[str]] = mapped_column(default=list)
    update_frequency: Mapped[str | None]
    tags: Mapped[list[str]] = mapped_column(default=list)
    group_name: Mapped[str | None]
    access: Mapped[str | None]
    materialization: Mapped[str | None]
    relation_name: Mapped[str | None]
    status: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A measurement, not part of the definition: changing it does not touch updated_at.
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    row_count_measured_at: Mapped[datetime | None]

    runs: Mapped[list[Run]] = relationship(back_populates="product", passive_deletes=True)


class Run(Base):
    """One dbt invocation, imported from run_results.json or started by the portal."""

    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None while a portal-started run waits for dbt to report its invocation id.
    invocation_id: Mapped[str | None] = mapped_column(unique=True)
    command: Mapped[str]
    selector: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str | None]
    status: Mapped[str] = mapped_column(String(16))
    triggered_by: Mapped[str]
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_products.id", ondelete="SET NULL"), index=True
    )
    # When the run was started (or, while queued, requested): run history is ordered by it.
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    elapsed_s: Mapped[float | None]
    log: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]

    product: Mapped[DataProduct | None] = relationship(back_populates="runs")
    node_results: Mapped[list[NodeResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class NodeResult(Base):
    """One node's outcome in one run; tests (resource_type 'test') give the test history."""

    __tablename__ = "node_results"
    # The unique constraint also serves "all results of a run".
    __table_args__ = (UniqueConstraint("run_id", "unique_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    unique_id: Mapped[str] = mapped_column(index=True)
    resource_type: Mapped[str]
    status: Mapped[str]
    execution_time: Mapped[float]
    failures: Mapped[int | None]
    message: Mapped[str | None] = mapped_column(Text)
    # dbt writes no timing for skipped nodes, so both ends may be unknown.
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    attached_node: Mapped[str | None] = mapped_column(index=True)  # the node a test checks
    test_name: Mapped[str | None]  # generic test name (not_null, ...) or 'singular'
    column_name: Mapped[str | None]

    run: Mapped[Run] = relationship(back_populates="node_results")


class AuditEvent(Base):
    """Who changed what, and when. Written in the same transaction as the change."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str]
    action: Mapped[str]  # e.g. product.registered, product.removed
    object_type: Mapped[str]
    object_id: Mapped[str]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- observability: profiles, drift and usage as time series ------------------------------
# Keyed by the dbt model name rather than data_products.id: any built model can be profiled or
# previewed (not only registered products), and a product's history outlives its registration.

PROFILE_STATUSES = ("ok", "empty", "missing", "unavailable", "error")
DRIFT_KINDS = ("schema", "distribution")
USAGE_FACES = ("ui", "api", "cli")


class ProductProfile(Base):
    """One measurement of a built model in the warehouse, taken after a build or on demand.

    `status` says whether there was anything to measure: a missing table, an unreachable
    warehouse or an empty table is a measurement too, so the history shows when it happened.
    """

    __tablename__ = "product_profiles"
    __table_args__ = (
        CheckConstraint(_one_of("status", PROFILE_STATUSES), name="status"),
        Index(None, "product", "measured_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str]
    unique_id: Mapped[str | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    primary_key: Mapped[list[str]] = mapped_column(default=list)
    duplicate_keys: Mapped[int | None] = mapped_column(BigInteger)
    # The newest value of the freshness column (settings.freshness_column), if the model has one.
    newest_update: Mapped[datetime | None]
    # Per column, in table order: name, type, kind, nulls, null_rate, distinct, min, max, mean, ...
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Per upstream source with a freshness promise: its newest loaded_at_field value.
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    elapsed_s: Mapped[float | None]


class DriftEvent(Base):
    """A change between two successive profiles that crossed a threshold (or a schema change)."""

    __tablename__ = "drift_events"
    __table_args__ = (
        CheckConstraint(_one_of("kind", DRIFT_KINDS), name="kind"),
        Index(None, "product", "detected_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16))
    column: Mapped[str | None]
    change: Mapped[str]  # added, removed, retyped, null_rate, distinct_count, mean, psi
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_profiles.id", ondelete="CASCADE"), index=True
    )
    acknowledged: Mapped[bool] = mapped_column(default=False)
    acknowledged_by: Mapped[str | None]
    acknowledged_at: Mapped[datetime | None]


class UsageEvent(Base):
    """One read of a product's data through the portal: a preview, an API query, a CLI export."""

    __tablename__ = "usage_events"
    __table_args__ = (
        CheckConstraint(_one_of("face", USAGE_FACES), name="face"),
        Index(None, "product", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user: Mapped[str] = mapped_column(index=True)
    product: Mapped[str]
    face: Mapped[str] = mapped_column(String(8))
    rows: Mapped[int | None] = mapped_column(BigInteger)
    duration_ms: Mapped[float | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- API bearer tokens ---------------------------------------------------------------------

TOKEN_ROLES = ("viewer", "creator", "reviewer", "admin")  # least to most


class ApiToken(Base):
    """A bearer token of the REST API. Only the SHA-256 of its secret is stored: the secret is
    shown once, when the token is created, and a leaked database cannot be replayed as tokens."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(_one_of("role", TOKEN_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(index=True)
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str]
    # Updated at most every few minutes (see portal.auth.access): a write per request would serialise reads.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None]


# --- proposals: each product change as a git commit ----------------------------------------

# open: committed, being built; in_review: built and tested, waiting for a reviewer (its data on
# its Nessie branch or in the audit schema); published: merged into main; failed: its build or
# tests failed (the branch stays); rejected: a reviewer said no (why is its comment); expired:
# nobody decided in PORTAL_REVIEW_EXPIRY_DAYS; stale: main changed what it was built on, so it
# must be resubmitted; superseded: a newer proposal of the product replaced it; discarded: the
# product was discarded (the branch is gone).
PROPOSAL_STATES = (
    "open",
    "in_review",
    "published",
    "failed",
    "rejected",
    "expired",
    "stale",
    "superseded",
    "discarded",
)
DECIDED_PROPOSAL_STATES = ("published", "failed", "rejected", "expired", "superseded", "discarded")


class Proposal(Base):
    """One change of a product as git holds it: the proposal's branch and commit in the project's
    own repository, who made it, and what became of it. Its files are in git, not here."""

    __tablename__ = "proposals"
    __table_args__ = (CheckConstraint(_one_of("state", PROPOSAL_STATES), name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str] = mapped_column(unique=True)
    commit_sha: Mapped[str] = mapped_column(String(64))
    base_sha: Mapped[str] = mapped_column(String(64))  # main when the proposal was made
    author: Mapped[str] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    merged_sha: Mapped[str | None] = mapped_column(String(64))  # main after the merge
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None]  # the reviewer who approved or rejected it
    comment: Mapped[str | None] = mapped_column(Text)  # the reviewer's words (a rejection's why)


# --- the SQL workspace's history -----------------------------------------------------------

# ok: it ran and returned rows; refused: the guard or the warehouse refused the SQL (the message
# says why); timeout: it ran past PORTAL_QUERY_TIMEOUT_S and was stopped.
QUERY_STATUSES = ("ok", "refused", "timeout")


class WorkspaceQuery(Base):
    """One query a user ran in the SQL workspace, kept so they can find and rerun it. Only the
    newest few per user are kept (portal/catalog/workspace.py prunes), so the table stays small."""

    __tablename__ = "query_history"
    __table_args__ = (
        CheckConstraint(_one_of("status", QUERY_STATUSES), name="status"),
        Index(None, "user", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    sql: Mapped[str] = mapped_column(Text)  # as the user wrote it, not rewritten
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int | None] = mapped_column(BigInteger)
    elapsed_ms: Mapped[float | None]
    message: Mapped[str | None] = mapped_column(Text)  # why it was refused or stopped
    upstream: Mapped[list[str]] = mapped_column(default=list)  # unique ids of what it read


# pending: waits for the owning team; approved: granted until expires_at; refused: said no;
# withdrawn: the requester took it back; revoked: the owners ended a grant early.
ACCESS_STATES = ("pending", "approved", "refused", "withdrawn", "revoked")


class AccessRequest(Base):
    """A consumer's request to read a product, and the owning team's decision. A grant is live
    while approved and before expires_at (portal/catalog/access_requests.py); on Trino, live grants
    are the generated file-based access rules of restricted products."""

    __tablename__ = "access_requests"
    __table_args__ = (
        CheckConstraint(_one_of("state", ACCESS_STATES), name="state"),
        Index(None, "product", "state"),
        Index(None, "requester", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str] = mapped_column(String(200))
    requester: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)
    days: Mapped[int]  # how long the access is asked for, from approval
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None]
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
