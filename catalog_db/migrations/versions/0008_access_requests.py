"""Access requests: a consumer asks to read a product, its owning team decides.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

One row per request (see catalog_db.models.AccessRequest); live grants are the approved rows
before their expiry. As in 0001, only plain SQLAlchemy types are used, so this migration keeps
working when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "approved", "refused", "withdrawn", "revoked")


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("requester", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN (" + ", ".join(repr(s) for s in STATES) + ")", name=op.f("ck_access_requests_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    op.create_index(
        op.f("ix_access_requests_product_state"), "access_requests", ["product", "state"], unique=False
    )
    op.create_index(
        op.f("ix_access_requests_requester_state"), "access_requests", ["requester", "state"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_access_requests_requester_state"), table_name="access_requests")
    op.drop_index(op.f("ix_access_requests_product_state"), table_name="access_requests")
    op.drop_table("access_requests")
