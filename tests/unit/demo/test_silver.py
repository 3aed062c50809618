"""The demo silver generator: reproducible, sized by scale, and shaped like a real retailer's feeds."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from portal.demo import silver

AS_OF = dt.date(2025, 6, 1)
SNAPSHOT = pd.Timestamp(AS_OF)
SCALE = 0.02  # about 2,000 orders: fast, yet every kind of row shows up


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return silver.frames(scale=SCALE, seed=42, as_of=AS_OF)


def test_frames_are_the_declared_tables(tables):
    assert tuple(tables) == silver.TABLES
    assert all(len(frame) > 0 for frame in tables.values())


def test_same_seed_and_as_of_give_identical_rows(tables):
    again = silver.frames(scale=SCALE, seed=42, as_of=AS_OF)
    for name in silver.TABLES:
        pd.testing.assert_frame_equal(tables[name], again[name], obj=name)


def test_another_seed_gives_other_rows(tables):
    other = silver.frames(scale=SCALE, seed=43, as_of=AS_OF)
    for name in ("customers", "orders", "order_items", "payments"):
        assert not tables[name].equals(other[name]), name


def test_sizes_follow_scale(tables):
    assert len(tables["orders"]) == pytest.approx(silver.ORDERS_AT_SCALE_1 * SCALE, rel=0.05)
    bigger = silver.frames(scale=SCALE * 3, seed=42, as_of=AS_OF)
    for name in ("customers", "orders", "order_items", "payments", "refunds"):
        assert len(bigger[name]) == pytest.approx(3 * len(tables[name]), rel=0.25), name
    # The catalogue grows slower than the order book, and the channels not at all.
    assert len(tables["products"]) < len(bigger["products"]) < 3 * len(tables["products"])
    assert len(bigger["channels"]) == len(tables["channels"])


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale must be positive"):
        silver.frames(scale=0, seed=42, as_of=AS_OF)


def test_keys_are_unique_and_references_resolve(tables):
    keys = {
        "channels": "channel_id",
        "customers": "customer_id",
        "products": "product_id",
        "orders": "order_id",
        "order_items": "order_item_id",
        "payments": "payment_id",
        "refunds": "refund_id",
    }
    for name, key in keys.items():
        assert tables[name][key].is_unique, name

    def resolves(child: str, column: str, parent: str) -> bool:
        values = tables[child][column].dropna()
        return bool(values.isin(tables[parent][keys[parent]]).all())

    assert resolves("orders", "customer_id", "customers")
    assert resolves("orders", "channel_id", "channels")
    assert resolves("order_items", "order_id", "orders")
    assert resolves("order_items", "product_id", "products")
    assert resolves("payments", "order_id", "orders")
    assert resolves("refunds", "order_id", "orders")
    assert resolves("refunds", "order_item_id", "order_items")
    assert resolves("refunds", "payment_id", "payments")
    # Every order has lines and exactly one settled (captured or voided) payment.
    assert set(tables["order_items"]["order_id"]) == set(tables["orders"]["order_id"])
    payments = tables["payments"]
    settled = payments[payments["status"] != "failed"]
    assert settled["order_id"].is_unique and len(settled) == len(tables["orders"])


def test_history_covers_three_years_up_to_as_of(tables):
    ordered_at = tables["orders"]["ordered_at"]
    assert ordered_at.max() < SNAPSHOT
    assert ordered_at.min() >= SNAPSHOT - pd.Timedelta(days=silver.HISTORY_DAYS)
    assert ordered_at.min() < SNAPSHOT - pd.Timedelta(days=silver.HISTORY_DAYS - 30)


def test_updated_at_never_after_as_of_and_fresh_where_rows_flow(tables):
    for name, frame in tables.items():
        assert frame["updated_at"].notna().all(), name
        assert frame["updated_at"].max() <= SNAPSHOT, name
    # So that dbt source freshness passes right after generating.
    for name in ("customers", "products", "orders", "order_items", "payments"):
        assert SNAPSHOT - tables[name]["updated_at"].max() < pd.Timedelta(hours=24), name


def test_several_channels_and_regions(tables):
    orders = tables["orders"].merge(tables["channels"], on="channel_id")
    assert set(orders["channel_code"]) == {"web", "mobile_app", "marketplace", "store"}
    # The marketplace opened during the history: no older orders come through it.
    marketplace = orders[orders["channel_code"] == "marketplace"]
    assert (marketplace["ordered_at"] >= marketplace["launched_at"]).all()
    assert tables["customers"]["region"].nunique() >= 4
    assert tables["customers"]["country_code"].nunique() >= 8


def test_cancellations_returns_and_refunds(tables):
    status = tables["orders"]["status"].value_counts(normalize=True)
    assert set(status.index) == {"completed", "cancelled", "returned", "partially_returned"}
    assert status["completed"] > 0.75
    assert 0.01 < status["cancelled"] < 0.1
    refunds = tables["refunds"]
    assert (refunds["amount"] > 0).all()
    # Refunds land after the order and never exceed what was paid for it.
    orders = tables["orders"].set_index("order_id")
    assert (
        refunds["refunded_at"].to_numpy() > orders.loc[refunds["order_id"], "ordered_at"].to_numpy()
    ).all()
    captured = tables["payments"].query("status == 'captured'").set_index("order_id")["amount"]
    refunded = refunds.groupby("order_id")["amount"].sum()
    assert (refunded <= captured.loc[refunded.index] + 0.005).all()
    # Nothing is refunded on cancelled orders (their payment was voided).
    cancelled = orders.index[orders["status"] == "cancelled"]
    assert not refunds["order_id"].isin(cancelled).any()


def test_payments_charge_the_lines_plus_shipping(tables):
    items = tables["order_items"]
    charged = (
        (items["quantity"] * items["unit_price"] - items["discount"].fillna(0))
        .groupby(items["order_id"])
        .sum()
    )
    orders = tables["orders"].set_index("order_id")
    settled = tables["payments"].query("status != 'failed'").set_index("order_id")["amount"]
    expected = charged + orders["shipping_amount"]
    assert (settled.loc[expected.index] - expected).abs().max() < 0.02


def test_repeat_and_one_off_customers(tables):
    orders_per_customer = tables["orders"].groupby("customer_id").size()
    one_off = (orders_per_customer == 1).mean()
    assert 0.3 < one_off < 0.7
    assert orders_per_customer.max() >= 8  # a heavy tail of loyal customers
    # Some registered customers never ordered.
    assert len(orders_per_customer) < len(tables["customers"])


def test_customers_sign_up_before_their_first_order(tables):
    first_order = tables["orders"].groupby("customer_id")["ordered_at"].min()
    signed_up = tables["customers"].set_index("customer_id")["created_at"]
    assert (signed_up.loc[first_order.index] < first_order).all()


def test_nullable_columns_have_some_nulls(tables):
    nullable = {
        "customers": ["phone", "region"],
        "products": ["brand"],
        "orders": ["discount_code"],
        "order_items": ["discount"],
        "refunds": ["order_item_id", "reason"],
    }
    for name, columns in nullable.items():
        for column in columns:
            share = tables[name][column].isna().mean()
            assert 0 < share < 1, f"{name}.{column}: {share:.0%} null"
    required = {"customers": ["email", "country_code"], "orders": ["customer_id", "ordered_at", "status"]}
    for name, columns in required.items():
        assert tables[name][columns].notna().all().all(), name


def test_products_have_margin_and_categories(tables):
    products = tables["products"]
    assert products["category"].nunique() >= 6
    assert (products["cost"] > 0).all()
    assert (products["cost"] < products["price"]).all()


def test_orders_peak_in_q4_and_on_weekends():
    orders = silver.frames(scale=0.1, seed=7, as_of=AS_OF)["orders"]["ordered_at"]
    per_month = orders.groupby(orders.dt.to_period("M")).size().iloc[1:-1]  # whole months only
    months = per_month.index.month
    assert per_month[months.isin([11, 12])].mean() > 1.15 * per_month[~months.isin([11, 12])].mean()
    per_weekday = orders.dt.weekday.value_counts()
    assert per_weekday[5] > per_weekday[1]  # Saturday beats Tuesday


def test_generate_writes_every_table(tmp_path):
    path = tmp_path / "nested" / "warehouse.duckdb"
    counts = silver.generate(path, scale=SCALE, seed=42, schema="raw", as_of=AS_OF)
    assert set(counts) == set(silver.TABLES)
    # A second run replaces the tables rather than appending.
    assert silver.generate(path, scale=SCALE, seed=42, schema="raw", as_of=AS_OF) == counts
    with duckdb.connect(str(path), read_only=True) as con:
        for name, count in counts.items():
            assert con.execute(f"select count(*) from raw.{name}").fetchone()[0] == count
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns where table_name = 'orders'"
            ).fetchall()
        )
    assert types["ordered_at"] == "TIMESTAMP"
    assert types["order_id"] == "BIGINT"


def test_generate_refuses_a_schema_that_is_not_a_plain_name(tmp_path):
    with pytest.raises(ValueError, match="not a plain SQL name"):
        silver.generate(tmp_path / "w.duckdb", scale=SCALE, schema="silver; drop table x")
    assert not (tmp_path / "w.duckdb").exists()
