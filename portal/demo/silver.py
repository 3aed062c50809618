"""Seeded demo silver data: the operational tables of a mid-sized online retailer.

The dbt project reads these tables (dbt/models/staging/_sources.yml). Everything is drawn from one
numpy generator with whole-array operations, so the same (scale, seed, as_of) always gives the same
rows, and scale 1 (about 100,000 orders over three years) takes a few seconds.

Timestamps are naive UTC. The history covers the HISTORY_DAYS days before `as_of` (midnight,
exclusive), and an event (delivery, return, cancellation...) is only recorded if it happened before
`as_of`: so `updated_at < as_of` everywhere, and the newest rows are minutes old at `as_of`, which
lets dbt source freshness pass right after generating with the default `as_of` (today, UTC).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

TABLES: tuple[str, ...] = (
    "channels",
    "customers",
    "products",
    "orders",
    "order_items",
    "payments",
    "refunds",
)

HISTORY_DAYS = 3 * 365
_PRE_HISTORY_DAYS = 365  # customers are acquired from a year before the history on
ORDERS_AT_SCALE_1 = 100_000
# Customers drawn per wanted order: with the order-count distribution below this yields 10-20% more
# candidate orders than wanted (enough even at small scales, where the heavy tail makes it vary),
# and the surplus is dropped at random.
_CUSTOMERS_PER_ORDER = 0.58

_DAY = np.timedelta64(1, "D")
_MINUTE = np.timedelta64(1, "m")
_US_PER_DAY = 86_400 * 10**6


@dataclass(frozen=True)
class _Category:
    name: str
    code: str
    catalogue_share: float
    median_price: float
    price_spread: float  # sigma of log(price)
    cost_ratio: tuple[float, float]  # unit cost as a share of the list price, low and high
    return_rate: float  # chance that a bought line comes back
    extra_unit_rate: float  # chance of each further unit on a line (geometric)
    brands: tuple[str, ...]
    nouns: tuple[str, ...]


# Fields in _Category order: name, SKU code, catalogue share, median price, price spread, cost ratio,
# return rate, extra-unit rate, brands, product nouns.
_CATEGORIES = (
    _Category(
        "Electronics", "ELE", 0.14, 120.0, 0.8, (0.70, 0.85), 0.07, 0.10,
        ("Voltix", "Auralink", "Nordtek"),
        ("Wireless Earbuds", "Smart Speaker", "Action Camera", "Power Bank", "Mechanical Keyboard", "4K Monitor"),
    ),
    _Category(
        "Home & Kitchen", "HOM", 0.16, 40.0, 0.7, (0.45, 0.60), 0.05, 0.15,
        ("Hearthwell", "Casa Nova", "Oakfield"),
        ("Chef Knife", "Cast Iron Skillet", "Linen Duvet Cover", "Espresso Maker", "Storage Baskets", "Table Lamp"),
    ),
    _Category(
        "Apparel", "APP", 0.20, 35.0, 0.6, (0.35, 0.50), 0.16, 0.20,
        ("Northbound", "Linea", "Fjordwear"),
        ("Merino Sweater", "Rain Jacket", "Running Tee", "Chino Trousers", "Denim Jacket", "Wool Socks"),
    ),
    _Category(
        "Beauty", "BEA", 0.10, 18.0, 0.5, (0.30, 0.45), 0.03, 0.30,
        ("Lumiere", "Botanica", "Pure Ritual"),
        ("Vitamin C Serum", "Clay Mask", "Hand Cream", "Lip Balm Set", "Shampoo Bar"),
    ),
    _Category(
        "Sports & Outdoors", "SPO", 0.12, 50.0, 0.8, (0.50, 0.65), 0.06, 0.15,
        ("Summit", "Peakform", "Wildrun"),
        ("Yoga Mat", "Trail Backpack", "Insulated Bottle", "Camping Lantern", "Resistance Bands"),
    ),
    _Category(
        "Books", "BOO", 0.10, 16.0, 0.4, (0.55, 0.70), 0.02, 0.15,
        ("Harbor Press", "Quill & Co"),
        ("Cookbook", "Travel Guide", "Crime Novel", "Children's Atlas", "Business Handbook"),
    ),
    _Category(
        "Toys & Games", "TOY", 0.10, 28.0, 0.6, (0.45, 0.60), 0.04, 0.15,
        ("Playwise", "Tinkertown"),
        ("Wooden Puzzle", "Strategy Board Game", "Building Blocks", "Plush Bear", "Card Game"),
    ),
    _Category(
        "Grocery", "GRO", 0.08, 8.0, 0.5, (0.70, 0.85), 0.01, 0.55,
        ("Good Harvest", "Origin Roasters"),
        ("Single-Origin Coffee", "Green Tea", "Olive Oil", "Dark Chocolate", "Granola"),
    ),
)  # fmt: skip

_PRODUCT_VARIANTS = ("", " Pro", " Mini", " Classic", " Plus", " 2")

# code, display name, type, share of customers who prefer it, days before as_of it opened
_CHANNELS = (
    ("web", "Web shop", "online", 0.42, 2400),
    ("mobile_app", "Mobile app", "online", 0.28, 1800),
    ("marketplace", "Marketplace", "online", 0.18, 540),  # opened during the history: no older orders
    ("store", "Retail stores", "offline", 0.12, 4000),
)
_WEB, _MOBILE_APP, _MARKETPLACE, _STORE = range(len(_CHANNELS))

# country, region, share of customers, dialling code
_COUNTRIES = (
    ("US", "North America", 0.30, "+1"),
    ("CA", "North America", 0.06, "+1"),
    ("MX", "Latin America", 0.03, "+52"),
    ("BR", "Latin America", 0.04, "+55"),
    ("GB", "Europe", 0.10, "+44"),
    ("DE", "Europe", 0.10, "+49"),
    ("FR", "Europe", 0.07, "+33"),
    ("NL", "Europe", 0.04, "+31"),
    ("ES", "Europe", 0.04, "+34"),
    ("IT", "Europe", 0.04, "+39"),
    ("AU", "Asia Pacific", 0.05, "+61"),
    ("JP", "Asia Pacific", 0.05, "+81"),
    ("SG", "Asia Pacific", 0.02, "+65"),
    ("IN", "Asia Pacific", 0.03, "+91"),
    ("ZA", "Middle East & Africa", 0.015, "+27"),
    ("AE", "Middle East & Africa", 0.015, "+971"),
)

_FIRST_NAMES = np.array([
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas", "Charlotte",
    "Mateo", "Isabella", "Leo", "Ava", "Hugo", "Chloe", "Luca", "Yuki", "Arjun", "Priya", "Kenji", "Fatima",
    "Omar", "Lena", "Jonas", "Sofia", "Diego", "Camila", "Wei", "Mei", "Aisha", "Kwame", "Ingrid", "Lars",
    "Chiara", "Marco", "Zoe", "Ethan", "Grace",
])  # fmt: skip
_LAST_NAMES = np.array([
    "Smith", "Johnson", "Garcia", "Müller", "Schmidt", "Martin", "Bernard", "Rossi", "Russo", "Tanaka",
    "Suzuki", "Sato", "Silva", "Santos", "Kumar", "Sharma", "Patel", "Nguyen", "Chen", "Wang", "Kim",
    "Jansen", "Visser", "Dubois", "Moreau", "Novak", "Kowalski", "O'Brien", "Murphy", "Walker", "Hughes",
    "Clarke", "Lopez", "Hernandez", "Fernandez", "Okafor", "Mensah", "Haddad", "Cohen", "Andersson",
])  # fmt: skip
_EMAIL_DOMAINS = np.array(["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.de"])

# Relative order volume by hour of day (UTC): quiet nights, an evening peak.
_HOURLY_VOLUME = np.array(
    [0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 0.9, 1.2, 1.4, 1.5, 1.6,
     1.8, 1.7, 1.6, 1.6, 1.7, 1.9, 2.2, 2.5, 2.6, 2.3, 1.7, 1.1]
)  # fmt: skip

_DISCOUNT_CODES = np.array(["WELCOME10", "SPRING15", "SUMMER20", "LOYALTY10", "BLACKFRIDAY25"])
_DISCOUNT_RATES = np.array([0.10, 0.15, 0.20, 0.10, 0.25])
_BLACK_FRIDAY = len(_DISCOUNT_CODES) - 1

_ONLINE_PAYMENTS = (
    ("card", 0.58),
    ("paypal", 0.20),
    ("apple_pay", 0.08),
    ("google_pay", 0.06),
    ("klarna", 0.05),
    ("gift_card", 0.03),
)
_STORE_PAYMENTS = (("card", 0.72), ("cash", 0.25), ("gift_card", 0.03))
_RETURN_REASONS = np.array(
    ["wrong_size", "damaged_in_transit", "not_as_described", "changed_mind", "arrived_late"]
)


def frames(*, scale: float = 1.0, seed: int = 42, as_of: dt.date | None = None) -> dict[str, pd.DataFrame]:
    """Every silver table as a DataFrame, keyed by the names in TABLES. Pure: no I/O."""
    if scale <= 0:
        raise ValueError(f"scale must be positive (1 = about {ORDERS_AT_SCALE_1:,} orders), got {scale}")
    end = np.datetime64(as_of or dt.datetime.now(dt.UTC).date(), "us")
    start = end - HISTORY_DAYS * _DAY
    rng = np.random.default_rng(seed)

    n_orders = max(1, round(ORDERS_AT_SCALE_1 * scale))
    # The catalogue grows much slower than the order book.
    n_products = max(60, round(900 * scale**0.5))

    plan = _plan_orders(rng, max(20, round(n_orders * _CUSTOMERS_PER_ORDER)), n_orders, start)
    channels = _channels(end)
    order_channel = _order_channels(rng, plan, channels)
    customers, customer_ids = _customers(rng, plan, end)
    products, product_category = _products(rng, n_products, start, end)
    sales = _sales(rng, plan.ordered_at, order_channel, products, product_category, end)
    payments, payment_of_order = _payments(rng, plan.ordered_at, order_channel, sales, end)
    refunds = _refunds(sales, payment_of_order)

    orders = pd.DataFrame(
        {
            "order_id": np.arange(1, len(plan.customer) + 1),
            "customer_id": customer_ids[plan.customer],
            "channel_id": channels["channel_id"].to_numpy()[order_channel],
            "ordered_at": plan.ordered_at,
            "status": sales.status,
            "discount_code": pd.Series(_DISCOUNT_CODES[sales.discount_code]).where(sales.discount_code >= 0),
            "shipping_amount": sales.shipping,
            "updated_at": sales.order_updated_at,
        }
    )
    tables = {
        "channels": channels,
        "customers": customers,
        "products": products,
        "orders": orders,
        "order_items": sales.items,
        "payments": payments,
        "refunds": refunds,
    }
    assert tuple(tables) == TABLES
    return tables


def generate(
    duckdb_path: str | Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    schema: str = "silver",
    as_of: dt.date | None = None,
) -> dict[str, int]:
    """Write the silver tables into `schema` of the DuckDB file; returns the row count of each table.

    All tables are replaced in one transaction, so readers see either the old or the new data set.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
        raise ValueError(
            f"schema {schema!r} is not a plain SQL name: use letters, digits and _, e.g. 'silver'"
        )
    tables = frames(scale=scale, seed=seed, as_of=as_of)
    path = Path(duckdb_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.begin()
        try:
            con.execute(f'create schema if not exists "{schema}"')
            for name, frame in tables.items():
                con.register("silver_frame", frame)
                con.execute(f'create or replace table "{schema}"."{name}" as select * from silver_frame')
                con.unregister("silver_frame")
            con.commit()
        except Exception:
            con.rollback()
            raise
    return {name: len(frame) for name, frame in tables.items()}


# --- orders over time -------------------------------------------------------------------------


@dataclass(frozen=True)
class _OrderPlan:
    customer: np.ndarray  # customer index of each order, orders sorted by time
    ordered_at: np.ndarray  # datetime64[us]
    signed_up_at: np.ndarray  # per customer index: when they were acquired (before any first order)
    preferred_channel: np.ndarray  # per customer index


def _plan_orders(
    rng: np.random.Generator, n_customers: int, n_orders: int, start: np.datetime64
) -> _OrderPlan:
    """Customers are acquired once and then reorder at their own pace.

    The process runs in "business time", where every day carries the same volume; business time is
    then mapped onto the calendar through the seasonal volume curve, so busy days (weekends, the Q4
    peak) get proportionally more orders without any order being thrown away.
    """
    # Heavy-tailed order counts: ~8% register and never order, ~45% of buyers order once, a few order
    # dozens of times.
    never_orders = rng.random(n_customers) < 0.08
    planned = np.where(never_orders, 0, 1 + np.minimum(rng.negative_binomial(0.55, 0.22, n_customers), 150))
    # Acquisition starts a year before the history so the first months already have returning
    # customers; u**0.8 skews it towards recent days: the business grows.
    span = _PRE_HISTORY_DAYS + HISTORY_DAYS
    acquired = span * rng.random(n_customers) ** 0.8 - _PRE_HISTORY_DAYS
    mean_gap_days = rng.lognormal(np.log(45), 0.9, n_customers)

    buyers = planned > 0
    customer = np.repeat(np.arange(n_customers), planned)
    first_row = (np.cumsum(planned) - planned)[buyers]
    gaps = rng.exponential(mean_gap_days[customer])
    gaps[first_row] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first_row], planned[buyers])  # days since the customer's first order
    business_day = acquired[customer] + elapsed

    inside = (business_day >= 0) & (business_day < HISTORY_DAYS)
    customer, business_day = customer[inside], business_day[inside]
    # Drop the surplus at random, so scale gives the order count exactly (unless the draw came up short).
    keep = np.sort(rng.choice(len(customer), min(n_orders, len(customer)), replace=False))
    customer, business_day = customer[keep], business_day[keep]
    # Buyers whose every order fell outside the history left no trace in it: leave them out.
    kept = never_orders | (np.bincount(customer, minlength=n_customers) > 0)
    customer = (np.cumsum(kept) - 1)[customer]
    acquired = acquired[kept]
    n_customers = len(acquired)

    to_calendar = _seasonal_calendar(start)
    hour = rng.choice(24, size=len(customer), p=_HOURLY_VOLUME / _HOURLY_VOLUME.sum())
    ordered_at = (
        to_calendar(business_day)
        + hour.astype("timedelta64[h]")
        + rng.integers(0, 3_600 * 10**6, len(customer)).astype("timedelta64[us]")
    )
    by_time = np.argsort(ordered_at, kind="stable")
    # Signed up up to 30 days before the acquisition day, and never after the first order.
    signed_up_at = to_calendar(acquired) - _days(rng.uniform(0, 30, n_customers))
    first_order_at = pd.Series(ordered_at).groupby(customer).min()
    buyer_ids = first_order_at.index.to_numpy()
    signed_up_at[buyer_ids] = np.minimum(signed_up_at[buyer_ids], first_order_at.to_numpy() - 5 * _MINUTE)

    shares = np.array([channel[3] for channel in _CHANNELS])
    return _OrderPlan(
        customer=customer[by_time],
        ordered_at=ordered_at[by_time],
        signed_up_at=signed_up_at,
        preferred_channel=rng.choice(len(_CHANNELS), n_customers, p=shares),
    )


def _seasonal_calendar(start: np.datetime64) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping business days (floats below HISTORY_DAYS) to calendar days from `start`."""
    dates = start.astype("datetime64[D]") + np.arange(HISTORY_DAYS)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    weekly = np.array([0.93, 0.90, 0.94, 0.98, 1.06, 1.14, 1.05])[weekday]
    # A January lull and a summer high, plus the Black Friday to Christmas peak.
    yearly = (
        1
        - 0.08 * np.cos(2 * np.pi * (day_of_year - 20) / 365.25)
        + 0.6 * np.exp(-0.5 * ((day_of_year - 335) / 15) ** 2)
    )
    volume = weekly * yearly
    edges = np.concatenate([[0.0], np.cumsum(volume)]) * (HISTORY_DAYS / volume.sum())

    def to_calendar(business_day: np.ndarray) -> np.ndarray:
        seasonal = np.searchsorted(edges, business_day, side="right") - 1
        # Before the history (sign-ups of the existing base) days map one to one.
        day = np.where(business_day < 0, np.floor(business_day).astype(np.int64), seasonal)
        return start + day * _DAY

    return to_calendar


def _days(days: np.ndarray | float) -> np.ndarray:
    """Fractional days as timedelta64[us]."""
    return (np.asarray(days) * _US_PER_DAY).astype("timedelta64[us]")


def _recorded(event_at: np.ndarray, otherwise: np.ndarray, end: np.datetime64) -> np.ndarray:
    """The event's time if it happened before the snapshot, else the last earlier known time."""
    return np.where(event_at < end, event_at, otherwise)


# --- reference tables -------------------------------------------------------------------------


def _channels(end: np.datetime64) -> pd.DataFrame:
    opened_at = end - np.array([channel[4] for channel in _CHANNELS]) * _DAY
    return pd.DataFrame(
        {
            "channel_id": np.arange(1, len(_CHANNELS) + 1),
            "channel_code": [channel[0] for channel in _CHANNELS],
            "channel_name": [channel[1] for channel in _CHANNELS],
            "channel_type": [channel[2] for channel in _CHANNELS],
            "launched_at": opened_at + 9 * np.timedelta64(1, "h"),
            # A reference table: rows change rarely (the dbt source has no freshness check for it).
            "updated_at": opened_at + 30 * _DAY,
        }
    )


def _order_channels(rng: np.random.Generator, plan: _OrderPlan, channels: pd.DataFrame) -> np.ndarray:
    """Customers mostly buy through their preferred channel; none before a channel opened."""
    shares = np.array([channel[3] for channel in _CHANNELS])
    n = len(plan.customer)
    channel = np.where(
        rng.random(n) < 0.8, plan.preferred_channel[plan.customer], rng.choice(len(_CHANNELS), n, p=shares)
    )
    not_open_yet = plan.ordered_at < channels["launched_at"].to_numpy()[channel]
    return np.where(not_open_yet, _WEB, channel)


def _customers(
    rng: np.random.Generator, plan: _OrderPlan, end: np.datetime64
) -> tuple[pd.DataFrame, np.ndarray]:
    """The customer table (ids in sign-up order) and the customer_id of each customer index."""
    n = len(plan.signed_up_at)
    by_signup = np.argsort(plan.signed_up_at, kind="stable")
    customer_ids = np.empty(n, dtype=np.int64)
    customer_ids[by_signup] = np.arange(1, n + 1)

    first = pd.Series(_FIRST_NAMES[rng.integers(0, len(_FIRST_NAMES), n)])
    last = pd.Series(_LAST_NAMES[rng.integers(0, len(_LAST_NAMES), n)])
    country = rng.choice(len(_COUNTRIES), n, p=[c[2] for c in _COUNTRIES])
    # "Müller" -> "muller", "O'Brien" -> "obrien"
    local_part = (
        (first + "." + last).str.lower().str.normalize("NFKD").str.replace(r"[^a-z.]", "", regex=True)
    )
    email = local_part + pd.Series(customer_ids).astype(str) + "@" + _EMAIL_DOMAINS[rng.integers(0, 6, n)]
    # Hand-typed sign-ups: a few addresses arrive upper-cased with stray whitespace (staging cleans them).
    messy = rng.random(n) < 0.02
    email = email.where(~messy, " " + email.str.upper() + " ")
    dial_code = np.array([c[3] for c in _COUNTRIES])[country]
    phone = pd.Series(dial_code) + " " + pd.Series(rng.integers(200_000_000, 999_999_999, n)).astype(str)
    region = pd.Series(np.array([c[1] for c in _COUNTRIES])[country])
    # Profile edits (address, consent) keep arriving; most recent edits are close to the snapshot.
    updated_at = np.maximum(plan.signed_up_at, end - _days(rng.exponential(90, n)))

    customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone.where(rng.random(n) >= 0.15),  # optional at sign-up
            "country_code": np.array([c[0] for c in _COUNTRIES])[country],
            "region": region.where(rng.random(n) >= 0.03),  # missing when the address lookup failed
            "marketing_opt_in": rng.random(n) < 0.55,
            "created_at": plan.signed_up_at,
            "updated_at": updated_at,
        }
    )
    return customers.sort_values("customer_id", ignore_index=True), customer_ids


def _products(
    rng: np.random.Generator, n: int, start: np.datetime64, end: np.datetime64
) -> tuple[pd.DataFrame, np.ndarray]:
    """The catalogue (ids in launch order) and each product's category index."""
    category = rng.choice(len(_CATEGORIES), n, p=[c.catalogue_share for c in _CATEGORIES])
    median = np.array([c.median_price for c in _CATEGORIES])[category]
    spread = np.array([c.price_spread for c in _CATEGORIES])[category]
    price = np.maximum(np.round(rng.lognormal(np.log(median), spread)) - 0.01, 0.99)  # x.99 price points
    cost_low, cost_high = (np.array([c.cost_ratio[i] for c in _CATEGORIES])[category] for i in (0, 1))
    cost = np.round(price * rng.uniform(cost_low, cost_high), 2)

    brand = _pick_per_category(rng, category, "brands")
    name = brand + " " + _pick_per_category(rng, category, "nouns") + rng.choice(_PRODUCT_VARIANTS, n)
    # Three quarters of the catalogue predates the history; the rest launches during it.
    launched_at = np.where(
        rng.random(n) < 0.75,
        start - _days(rng.uniform(30, 900, n)),
        start + _days(rng.uniform(0, HISTORY_DAYS - 30, n)),
    )
    # Prices and descriptions are edited continually; the most recent edit is hours before the snapshot.
    updated_at = np.maximum(launched_at, end - _days(rng.exponential(20, n)))

    by_launch = np.argsort(launched_at, kind="stable")
    product_id = np.arange(1, n + 1)
    codes = np.array([c.code for c in _CATEGORIES])[category[by_launch]]
    products = pd.DataFrame(
        {
            "product_id": product_id,
            "sku": pd.Series(codes) + "-" + pd.Series(product_id).astype(str).str.zfill(5),
            "product_name": name[by_launch],
            "category": np.array([c.name for c in _CATEGORIES])[category[by_launch]],
            "brand": pd.Series(brand[by_launch]).where(rng.random(n) >= 0.02),  # unbranded / not captured
            "cost": cost[by_launch],
            "price": price[by_launch],
            "launched_at": launched_at[by_launch],
            "updated_at": updated_at[by_launch],
        }
    )
    return products, category[by_launch]


def _pick_per_category(rng: np.random.Generator, category: np.ndarray, attribute: str) -> np.ndarray:
    """One random entry of each row's category list (`brands` or `nouns`), without a per-row loop."""
    options = [getattr(c, attribute) for c in _CATEGORIES]
    flat = np.array([option for group in options for option in group])
    counts = np.array([len(group) for group in options])
    offsets = np.cumsum(counts) - counts
    return flat[offsets[category] + rng.integers(0, counts[category])]


# --- order lines, returns, payments, refunds --------------------------------------------------


@dataclass(frozen=True)
class _Sales:
    items: pd.DataFrame
    line_order: np.ndarray  # order index of each line
    line_net: np.ndarray  # amount paid for each line after discounts
    line_returned_at: np.ndarray  # NaT unless the line was returned
    line_reason: pd.Series
    status: np.ndarray  # per order
    discount_code: np.ndarray  # per order: index into _DISCOUNT_CODES, -1 for none
    shipping: np.ndarray  # per order
    subtotal: np.ndarray  # per order, after discounts, before shipping
    credited_at: np.ndarray  # per order: goodwill credit time, NaT for none
    credit_amount: np.ndarray  # per order
    order_updated_at: np.ndarray


def _sales(
    rng: np.random.Generator,
    ordered_at: np.ndarray,
    channel: np.ndarray,
    products: pd.DataFrame,
    product_category: np.ndarray,
    end: np.datetime64,
) -> _Sales:
    n_orders = len(ordered_at)
    lines = 1 + np.minimum(rng.poisson(0.6, n_orders), 7)
    line_order = np.repeat(np.arange(n_orders), lines)
    line_at = ordered_at[line_order]
    n_lines = len(line_order)

    # Only launched products can be bought. Products are sorted by launch, so the buyable ones are a
    # prefix: draw from the popularity-weighted prefix by inverse CDF.
    cumulative_popularity = np.cumsum(rng.lognormal(0, 1.1, len(products)))
    buyable = np.maximum(np.searchsorted(products["launched_at"].to_numpy(), line_at, side="right"), 1)
    product = np.searchsorted(
        cumulative_popularity, rng.random(n_lines) * cumulative_popularity[buyable - 1], side="right"
    )
    category = product_category[product]
    extra_unit_rate = np.array([c.extra_unit_rate for c in _CATEGORIES])[category]
    quantity = np.minimum(rng.geometric(1 - extra_unit_rate), 6)
    # Today's list price, deflated by 3.5% a year for older orders.
    years_ago = (end - line_at).astype(np.int64) / (365 * _US_PER_DAY)  # both in microseconds
    unit_price = np.round(products["price"].to_numpy()[product] * 1.035 ** (-years_ago), 2)

    # Discount codes: most orders have none; Black Friday week is the exception.
    day_of_year = (ordered_at.astype("datetime64[D]") - ordered_at.astype("datetime64[Y]")).astype(np.int64)
    black_friday_week = (day_of_year >= 326) & (day_of_year <= 333)
    has_code = rng.random(n_orders) < np.where(black_friday_week, 0.45, 0.14)
    code = np.where(black_friday_week, _BLACK_FRIDAY, rng.integers(0, _BLACK_FRIDAY, n_orders))
    code = np.where(has_code, code, -1)
    gross = quantity * unit_price
    discount = np.where(has_code[line_order], np.round(gross * _DISCOUNT_RATES[code[line_order]], 2), np.nan)
    line_net = np.round(gross - np.nan_to_num(discount), 2)
    subtotal = np.round(np.bincount(line_order, weights=line_net, minlength=n_orders), 2)
    shipping = np.select(
        [channel == _STORE, subtotal >= 50, channel == _MARKETPLACE], [0.0, 0.0, 3.99], default=4.95
    )

    cancelled = rng.random(n_orders) < 0.045
    # Store purchases leave with the customer; parcels arrive one to six days later.
    delivered_at = ordered_at + np.where(
        channel == _STORE, np.timedelta64(0, "us"), _days(rng.uniform(1, 6, n_orders))
    )
    delivered = ~cancelled & (delivered_at < end)
    returned_at = delivered_at[line_order] + _days(rng.uniform(2, 28, n_lines))
    return_rate = np.array([c.return_rate for c in _CATEGORIES])[category]
    returned = delivered[line_order] & (rng.random(n_lines) < return_rate) & (returned_at < end)
    returned_at = np.where(returned, returned_at, np.datetime64("NaT"))
    reason = pd.Series(_RETURN_REASONS[rng.integers(0, len(_RETURN_REASONS), n_lines)])
    reason = reason.where(rng.random(n_lines) >= 0.1)  # the returns desk skips the reason now and then

    returned_lines = np.bincount(line_order, weights=returned, minlength=n_orders)
    status = np.select(
        [cancelled, returned_lines == lines, returned_lines > 0],
        ["cancelled", "returned", "partially_returned"],
        default="completed",
    )
    # Goodwill credits (late parcel, damaged box) on a few delivered orders nothing was returned from.
    credited_at = delivered_at + _days(rng.uniform(0.5, 10, n_orders))
    credited = (status == "completed") & delivered & (rng.random(n_orders) < 0.012) & (credited_at < end)
    credit_amount = np.where(
        credited, np.maximum(np.round(subtotal * rng.uniform(0.05, 0.2, n_orders), 2), 0.01), 0
    )
    credited_at = np.where(credited, credited_at, np.datetime64("NaT"))

    cancelled_at = ordered_at + _days(rng.uniform(5, 60, n_orders) / 1440)
    last_return_at = pd.Series(returned_at).groupby(line_order).max().reindex(range(n_orders)).to_numpy()
    order_updated_at = np.where(cancelled, cancelled_at, delivered_at)
    order_updated_at = _recorded(order_updated_at, ordered_at, end)
    # NaT compares False, so the max keeps the known time.
    order_updated_at = np.where(last_return_at > order_updated_at, last_return_at, order_updated_at)
    order_updated_at = np.where(credited_at > order_updated_at, credited_at, order_updated_at)

    items = pd.DataFrame(
        {
            "order_item_id": np.arange(1, n_lines + 1),
            "order_id": line_order + 1,
            "product_id": products["product_id"].to_numpy()[product],
            "quantity": quantity,
            "unit_price": unit_price,
            "discount": discount,
            "updated_at": np.where(returned, returned_at, line_at),
        }
    )
    return _Sales(
        items=items,
        line_order=line_order,
        line_net=line_net,
        line_returned_at=returned_at,
        line_reason=reason,
        status=status,
        discount_code=code,
        shipping=shipping,
        subtotal=subtotal,
        credited_at=credited_at,
        credit_amount=credit_amount,
        order_updated_at=order_updated_at,
    )


def _payments(
    rng: np.random.Generator, ordered_at: np.ndarray, channel: np.ndarray, sales: _Sales, end: np.datetime64
) -> tuple[pd.DataFrame, np.ndarray]:
    """One settled payment per order (voided if cancelled), after an occasional declined attempt.

    Also returns the payment_id of each order's settled payment, which refunds point at.
    """
    n_orders = len(ordered_at)
    method = np.where(
        channel == _STORE,
        _choose(rng, _STORE_PAYMENTS, n_orders),
        _choose(rng, _ONLINE_PAYMENTS, n_orders),
    )
    method = np.where(channel == _MARKETPLACE, "marketplace_payout", method)  # the marketplace collects
    attempted_at = ordered_at + _days(rng.uniform(5, 180, n_orders) / 86_400)
    cancelled = sales.status == "cancelled"
    voided_at = _recorded(attempted_at + _days(rng.uniform(5, 60, n_orders) / 1440), attempted_at, end)
    settled = pd.DataFrame(
        {
            "order_index": np.arange(n_orders),
            "method": method,
            "status": np.where(cancelled, "voided", "captured"),
            "amount": np.round(sales.subtotal + sales.shipping, 2),
            "attempted_at": attempted_at,
            "updated_at": np.where(cancelled, voided_at, attempted_at),
        }
    )
    # Declined cards before the successful attempt (online only: the till retries on the spot).
    declined = np.flatnonzero(
        (channel != _STORE) & (channel != _MARKETPLACE) & (rng.random(n_orders) < 0.035)
    )
    declined_at = ordered_at[declined] + _days(rng.uniform(1, 4, len(declined)) / 86_400)
    failed = pd.DataFrame(
        {
            "order_index": declined,
            "method": "card",
            "status": "failed",
            "amount": settled["amount"].to_numpy()[declined],
            "attempted_at": declined_at,
            "updated_at": declined_at,
        }
    )
    payments = pd.concat([settled, failed], ignore_index=True).sort_values("attempted_at", kind="stable")
    payments.insert(0, "payment_id", np.arange(1, len(payments) + 1))
    payments.insert(1, "order_id", payments.pop("order_index") + 1)

    settled_rows = payments[payments["status"] != "failed"]
    payment_of_order = np.empty(n_orders, dtype=np.int64)
    payment_of_order[settled_rows["order_id"] - 1] = settled_rows["payment_id"]
    return payments.reset_index(drop=True), payment_of_order


def _choose(rng: np.random.Generator, weighted: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    names = np.array([name for name, _ in weighted])
    return names[rng.choice(len(weighted), n, p=[weight for _, weight in weighted])]


def _refunds(sales: _Sales, payment_of_order: np.ndarray) -> pd.DataFrame:
    """Returned lines are refunded in full; goodwill credits refund part of an order, on no line."""
    returned = np.flatnonzero(~np.isnat(sales.line_returned_at))
    credited = np.flatnonzero(~np.isnat(sales.credited_at))
    order_index = np.concatenate([sales.line_order[returned], credited])
    refunds = pd.DataFrame(
        {
            "order_id": order_index + 1,
            "order_item_id": pd.array(
                np.concatenate([returned + 1, np.zeros(len(credited), np.int64)]), dtype="Int64"
            ),
            "payment_id": payment_of_order[order_index],
            "amount": np.concatenate([sales.line_net[returned], sales.credit_amount[credited]]),
            "reason": np.concatenate(
                [sales.line_reason.to_numpy()[returned], ["goodwill_credit"] * len(credited)]
            ),
            "refunded_at": np.concatenate([sales.line_returned_at[returned], sales.credited_at[credited]]),
        }
    )
    refunds.loc[len(returned) :, "order_item_id"] = pd.NA  # credits are on the order, not on a line
    refunds = refunds.sort_values("refunded_at", kind="stable", ignore_index=True)
    refunds.insert(0, "refund_id", np.arange(1, len(refunds) + 1))
    refunds["updated_at"] = refunds["refunded_at"]  # refunds are booked once, when issued
    return refunds
