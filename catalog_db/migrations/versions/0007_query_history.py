"""The SQL workspace's query history: each user's recent queries, newest first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

One row per query run in the workspace (see catalog_db.models.WorkspaceQuery); the portal keeps
the newest few per user, so (user, at) is the one index it needs. As in 0001, only plain
SQLAlchemy types are used, so this migration keeps working when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "query_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("elapsed_ms", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("upstream", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'refused', 'timeout')", name=op.f("ck_query_history_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_history")),
    )
    op.create_index(op.f("ix_query_history_user_at"), "query_history", ["user", "at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_query_history_user_at"), table_name="query_history")
    op.drop_table("query_history")
