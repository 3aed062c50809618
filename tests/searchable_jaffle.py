"""jaffle_shop_duckdb's real artifacts with its `customers` model given what a catalog search looks
in: an owner, a dbt tag, a label, a long column description, and a column whose name and
description are markdown and HTML, as anybody may write them in a dbt YAML file."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from tests.conftest import FIXTURES

JAFFLE = FIXTURES / "jaffle_shop_duckdb"
HOSTILE = "*_[`<b>`"  # a column name: bold, italics, a link, code and HTML, were it markup
HOSTILE_DESCRIPTION = "Set by <b>ops</b> :red[loudly] $x$ [here](http://example.com) **now**"
LONG = (
    "Total value of a customer's orders in Australian dollars, summed over every order the "
    "customer placed since the shop opened, refunds and coupons included, rounded to the cent "
    "as the finance team's quarterly ledger reports it."
)


def searchable_jaffle(dest: Path) -> dict[str, str]:
    """A portal's PORTAL_* environment over the edited artifacts, under `dest`."""
    raw = json.loads(gzip.decompress((JAFFLE / "manifest.json.gz").read_bytes()))
    node = raw["nodes"]["model.jaffle_shop.customers"]
    node["meta"] = node["config"]["meta"] = {"owner": "growth-team", "tags": ["retention"]}
    node["tags"] = node["config"]["tags"] = ["pii"]
    node["columns"]["total_order_amount"]["description"] = LONG
    node["columns"][HOSTILE] = {"name": HOSTILE, "description": HOSTILE_DESCRIPTION, "meta": {}, "tags": []}
    target = dest / "target"
    target.mkdir(parents=True)
    (target / "manifest.json").write_text(json.dumps(raw))
    shutil.copy(JAFFLE / "run_results.json.gz", target / "run_results.json.gz")
    return {
        "PORTAL_DBT_TARGET_DIR": str(target),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{dest / 'catalog.db'}",
        "PORTAL_DATA_PRODUCTS_PATH": "models",
    }
