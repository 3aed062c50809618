"""The initial catalog schema: data products, runs, node results and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Datetimes are stored as `DateTime(timezone=True)`; the models read them back as UTC-aware
values (`catalog_db.models.UTCDateTime`). Migrations use only plain SQLAlchemy types so that
they keep working when the models change later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("object_type", sa.String(), nullable=False),
        sa.Column("object_id", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"], unique=False)
    op.create_index(
        op.f("ix_audit_events_object_type_object_id"),
        "audit_events",
        ["object_type", "object_id"],
        unique=False,
    )
    op.create_table(
        "data_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("unique_id", sa.String(), nullable=True),
        sa.Column("data_product_type", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("consumers", sa.JSON(), nullable=False),
        sa.Column("update_frequency", sa.String(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("group_name", sa.String(), nullable=True),
        sa.Column("access", sa.String(), nullable=True),
        sa.Column("materialization", sa.String(), nullable=True),
        sa.Column("relation_name", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("row_count_measured_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("origin IN ('dbt', 'portal')", name=op.f("ck_data_products_origin")),
        sa.CheckConstraint(
            "status IN ('draft', 'building', 'published', 'failed', 'deprecated', 'removed')",
            name=op.f("ck_data_products_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_products")),
        sa.UniqueConstraint("name", name=op.f("uq_data_products_name")),
        sa.UniqueConstraint("unique_id", name=op.f("uq_data_products_unique_id")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invocation_id", sa.String(), nullable=True),
        sa.Column("command", sa.String(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("triggered_by", sa.String(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("elapsed_s", sa.Double(), nullable=True),
        sa.Column("log", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'success', 'error', 'partial')", name=op.f("ck_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["data_products.id"],
            name=op.f("fk_runs_product_id_data_products"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("invocation_id", name=op.f("uq_runs_invocation_id")),
    )
    op.create_index(op.f("ix_runs_product_id"), "runs", ["product_id"], unique=False)
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"], unique=False)
    op.create_table(
        "node_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unique_id", sa.String(), nullable=False),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("execution_time", sa.Double(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attached_node", sa.String(), nullable=True),
        sa.Column("test_name", sa.String(), nullable=True),
        sa.Column("column_name", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_node_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_results")),
        sa.UniqueConstraint("run_id", "unique_id", name=op.f("uq_node_results_run_id_unique_id")),
    )
    op.create_index(op.f("ix_node_results_attached_node"), "node_results", ["attached_node"], unique=False)
    op.create_index(op.f("ix_node_results_unique_id"), "node_results", ["unique_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_node_results_unique_id"), table_name="node_results")
    op.drop_index(op.f("ix_node_results_attached_node"), table_name="node_results")
    op.drop_table("node_results")
    op.drop_index(op.f("ix_runs_started_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_product_id"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("data_products")
    op.drop_index(op.f("ix_audit_events_object_type_object_id"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_at"), table_name="audit_events")
    op.drop_table("audit_events")
