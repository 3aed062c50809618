"""A product whose audit fails on real data, for tests that need a product never published."""

from __future__ import annotations

from portal.creation.spec import ProductSpec


def lines_by_customer(name: str) -> ProductSpec:
    """Order lines by customer: the lines repeat their customer, so customer_id is no key and the
    audit's `unique` test fails (the product is `failed`, its files kept, nothing published)."""
    return ProductSpec(
        name=name,
        description="Order lines by customer.",
        data_product_type="CUSTOMER_360",
        owner="sales-team",
        sql="select customer_id, order_id from int_orders",
        primary_key=("customer_id",),
    )
