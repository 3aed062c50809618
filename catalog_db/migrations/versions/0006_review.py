"""Review: proposals wait for a reviewer, who approves or rejects them with a comment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

A product may now be `in_review` (its audit passed, a reviewer decides) or `rejected` (never
published; its proposal was rejected or expired), and a proposal gains the states of review
(in_review, rejected, expired, stale, superseded), who decided and their comment. Batch mode lets
SQLite, which cannot alter a constraint in place, copy the tables (PostgreSQL alters them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PRODUCT = ("draft", "building", "published", "failed", "deprecated", "removed")
NEW_PRODUCT = ("draft", "building", "in_review", "published", "failed", "rejected", "deprecated", "removed")
OLD_PROPOSAL = ("open", "published", "failed", "discarded")
NEW_PROPOSAL = (
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


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("data_products") as batch:
        batch.drop_constraint(op.f("ck_data_products_status"), type_="check")
        batch.create_check_constraint(op.f("ck_data_products_status"), _one_of("status", NEW_PRODUCT))
    with op.batch_alter_table("proposals") as batch:
        batch.drop_constraint(op.f("ck_proposals_state"), type_="check")
        batch.create_check_constraint(op.f("ck_proposals_state"), _one_of("state", NEW_PROPOSAL))
        batch.add_column(sa.Column("decided_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("comment", sa.Text(), nullable=True))


def downgrade() -> None:
    # What the old vocabularies cannot say becomes the nearest they can: a product waiting for
    # review or rejected was never published (failed); a proposal that did not reach main failed.
    op.execute("UPDATE data_products SET status = 'failed' WHERE status IN ('in_review', 'rejected')")
    op.execute(
        "UPDATE proposals SET state = 'failed' "
        "WHERE state IN ('in_review', 'rejected', 'expired', 'stale', 'superseded')"
    )
    with op.batch_alter_table("proposals") as batch:
        batch.drop_column("comment")
        batch.drop_column("decided_by")
        batch.drop_constraint(op.f("ck_proposals_state"), type_="check")
        batch.create_check_constraint(op.f("ck_proposals_state"), _one_of("state", OLD_PROPOSAL))
    with op.batch_alter_table("data_products") as batch:
        batch.drop_constraint(op.f("ck_data_products_status"), type_="check")
        batch.create_check_constraint(op.f("ck_data_products_status"), _one_of("status", OLD_PRODUCT))
