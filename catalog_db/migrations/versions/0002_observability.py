"""Observability: product profiles, drift events and usage events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Three append-only time series keyed by the dbt model name (see catalog_db.models). As in 0001,
only plain SQLAlchemy types are used, so this migration keeps working when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("product", sa.String(), nullable=False),
        sa.Column("face", sa.String(length=8), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.CheckConstraint("face IN ('ui', 'api', 'cli')", name=op.f("ck_usage_events_face")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    )
    op.create_index(op.f("ix_usage_events_at"), "usage_events", ["at"], unique=False)
    op.create_index(op.f("ix_usage_events_product_at"), "usage_events", ["product", "at"], unique=False)
    op.create_index(op.f("ix_usage_events_user"), "usage_events", ["user"], unique=False)
    op.create_table(
        "product_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(), nullable=False),
        sa.Column("unique_id", sa.String(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("primary_key", sa.JSON(), nullable=False),
        sa.Column("duplicate_keys", sa.BigInteger(), nullable=True),
        sa.Column("newest_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("elapsed_s", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "status IN ('ok', 'empty', 'missing', 'unavailable', 'error')",
            name=op.f("ck_product_profiles_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_product_profiles_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_profiles")),
    )
    op.create_index(
        op.f("ix_product_profiles_product_measured_at"),
        "product_profiles",
        ["product", "measured_at"],
        unique=False,
    )
    op.create_index(op.f("ix_product_profiles_run_id"), "product_profiles", ["run_id"], unique=False)
    op.create_table(
        "drift_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("column", sa.String(), nullable=True),
        sa.Column("change", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('schema', 'distribution')", name=op.f("ck_drift_events_kind")),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["product_profiles.id"],
            name=op.f("fk_drift_events_profile_id_product_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_events")),
    )
    op.create_index(
        op.f("ix_drift_events_product_detected_at"), "drift_events", ["product", "detected_at"], unique=False
    )
    op.create_index(op.f("ix_drift_events_profile_id"), "drift_events", ["profile_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_drift_events_profile_id"), table_name="drift_events")
    op.drop_index(op.f("ix_drift_events_product_detected_at"), table_name="drift_events")
    op.drop_table("drift_events")
    op.drop_index(op.f("ix_product_profiles_run_id"), table_name="product_profiles")
    op.drop_index(op.f("ix_product_profiles_product_measured_at"), table_name="product_profiles")
    op.drop_table("product_profiles")
    op.drop_index(op.f("ix_usage_events_user"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_product_at"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_at"), table_name="usage_events")
    op.drop_table("usage_events")
