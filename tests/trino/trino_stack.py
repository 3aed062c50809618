"""Helpers for the trino tier: the local stack's settings and direct Trino queries."""

from __future__ import annotations

import dataclasses
import os

import trino

from portal.creation.publish.nessie import NessieClient
from portal.settings import ROOT, Settings

STACK_DIR = ROOT / "var" / "stack"
CATALOG_FILE = STACK_DIR / "etc" / "catalog" / "nessie.properties"
HTTPS_PORT = int(os.environ.get("TRINO_HTTPS_PORT", "8443"))  # deploy/stack.sh's default
CA_FILE = STACK_DIR / "etc" / "tls" / "cert.pem"  # the stack's self-signed certificate
HOW_TO_START = (
    "Run the trino tier with `make test-trino` (it starts the stack, loads the silver data and stops "
    "the stack afterwards), or start it yourself with `make stack-up` and load the data with "
    "`.venv/bin/python -m portal load-trino --scale 0.02`."
)


def trino_settings(**overrides: object) -> Settings:
    """The portal's settings pointed at the local stack (PORTAL_TRINO_* from the environment).
    Review is off (publishing at once, as most of the tier tests); test_review_trino.py turns it on."""
    values: dict[str, object] = {"warehouse": "trino", "dbt_target": "trino", "review": "off"}
    values.update(overrides)
    return Settings.from_env(**values)


def signed_in(settings: Settings, service_user: str = "portal", **overrides: object) -> Settings:
    """`settings` over the stack's HTTPS port, signing in as `service_user` with its password
    (deploy/stack.sh writes one per service user into etc/<user>.password)."""
    return dataclasses.replace(
        settings,
        trino_http_scheme="https",
        trino_port=HTTPS_PORT,
        trino_user=service_user,
        trino_password_file=str(STACK_DIR / "etc" / f"{service_user}.password"),
        trino_ca_file=str(CA_FILE),
        **overrides,
    )


def trino_cursor(settings: Settings, user: str | None = None) -> trino.dbapi.Cursor:
    return trino.dbapi.connect(
        host=settings.trino_host,
        port=settings.trino_port,
        user=user or settings.trino_user,
        catalog=settings.trino_catalog,
        http_scheme=settings.trino_http_scheme,
    ).cursor()


def fetch(settings: Settings, sql: str, user: str | None = None) -> list[list[object]]:
    cursor = trino_cursor(settings, user)
    cursor.execute(sql)
    return cursor.fetchall()


def main_state(settings: Settings, nessie: NessieClient) -> dict[str, object]:
    """main's head and content keys (Nessie) and every gold table's Iceberg snapshot ids (Trino)."""
    catalog, gold = settings.trino_catalog, settings.gold_schema
    tables = [
        r[0]
        for r in fetch(
            settings,
            f"select table_name from {catalog}.information_schema.tables where table_schema = '{gold}' "
            "order by 1",
        )
    ]
    snapshots = {
        t: sorted(r[0] for r in fetch(settings, f'select snapshot_id from {catalog}.{gold}."{t}$snapshots"'))
        for t in tables
    }
    return {"head": nessie.head("main"), "entries": nessie.entries("main"), "snapshots": snapshots}
