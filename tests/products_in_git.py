"""What the tests of products as code share: git as a person would run it, and the sales team's
product spec (the bare remote is a fixture in tests/conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from portal.creation.spec import ProductSpec

ORDERS_PER_CUSTOMER = "select customer_id, count(*) as orders from int_orders group by 1"


def git(where: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def sales_spec(
    name: str, sql: str = ORDERS_PER_CUSTOMER, description: str = "Orders per customer, for the sales team."
) -> ProductSpec:
    return ProductSpec(
        name=name,
        description=description,
        data_product_type="CUSTOMER_360",
        owner="team-sales",
        sql=sql,
        primary_key=("customer_id",),
    )
