"""The reviewer role: tokens may carry it, beside viewer, creator and admin.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

A reviewer may do what a creator does and also decide on others' proposals (the review of
products as code). Only the check constraint on api_tokens.role changes; batch mode lets SQLite,
which cannot alter a constraint in place, copy the table (PostgreSQL alters it).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_api_tokens_role"


def _roles(*roles: str) -> str:
    return "role IN (" + ", ".join(f"'{role}'" for role in roles) + ")"


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch.create_check_constraint(op.f(CONSTRAINT), _roles("viewer", "creator", "reviewer", "admin"))


def downgrade() -> None:
    # A reviewer's token would break the old constraint: it becomes a creator's, the nearest below.
    op.execute("UPDATE api_tokens SET role = 'creator' WHERE role = 'reviewer'")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch.create_check_constraint(op.f(CONSTRAINT), _roles("viewer", "creator", "admin"))
