"""Proposals: every product change as a git commit, with its branch, author and fate.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

As in 0001, only plain SQLAlchemy types, so this migration keeps working when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("branch", sa.String(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("base_sha", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("merged_sha", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'published', 'failed', 'discarded')", name=op.f("ck_proposals_state")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_proposals_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
        sa.UniqueConstraint("branch", name=op.f("uq_proposals_branch")),
    )
    op.create_index(op.f("ix_proposals_product"), "proposals", ["product"], unique=False)
    op.create_index(op.f("ix_proposals_author"), "proposals", ["author"], unique=False)
    op.create_index(op.f("ix_proposals_run_id"), "proposals", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_proposals_run_id"), table_name="proposals")
    op.drop_index(op.f("ix_proposals_author"), table_name="proposals")
    op.drop_index(op.f("ix_proposals_product"), table_name="proposals")
    op.drop_table("proposals")
