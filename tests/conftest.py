"""Shared fixtures: the real demo, built once per session at a small scale with real dbt."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.settings import ROOT, Settings
from tests.browser import browser  # noqa: F401  (a fixture, for tests/e2e and tests/sso)

FIXTURES = ROOT.parent / "shared" / "fixtures"
TEST_SCALE = 0.02  # about 2,000 orders: every model and test runs, in seconds


def demo_environ(base: Path) -> dict[str, str]:
    """The PORTAL_* variables that put a whole portal (warehouse, catalog, artifacts) under `base`."""
    return {
        "PORTAL_DUCKDB_PATH": str(base / "warehouse.duckdb"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'catalog.db'}",
        "PORTAL_DBT_TARGET_DIR": str(base / "target"),
        "PORTAL_DBT_PROJECT_DIR": str(base / "project"),  # the demo copies dbt/ there (a git repository)
        "PORTAL_DEMO_SCALE": str(TEST_SCALE),
    }


@pytest.fixture(scope="session")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A demo portal built once per session: silver data, dbt build, docs generate, sync."""
    from portal.demo.build import build_demo

    base = tmp_path_factory.mktemp("demo")
    environ = demo_environ(base)
    lines: list[str] = []
    build_demo(Settings.from_env(environ), say=lines.append)
    return environ


@pytest.fixture
def demo_settings(demo_env: dict[str, str]) -> Settings:
    return Settings.from_env(demo_env)


def copy_demo(demo_env: dict[str, str], dest: Path) -> dict[str, str]:
    """The PORTAL_* environment of a private copy of the demo build and of its dbt project,
    for tests that write (builds, profiles, usage). The copy starts with no usage events: the
    shared demo collects some from the tests that preview it."""
    source = Path(demo_env["PORTAL_DUCKDB_PATH"]).parent
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "warehouse.duckdb", dest / "warehouse.duckdb")
    with sqlite3.connect(source / "catalog.db") as src, sqlite3.connect(dest / "catalog.db") as dst:
        src.backup(dst)  # consistent even with a WAL the source has not checkpointed
        dst.execute("delete from usage_events")
    shutil.copytree(source / "target", dest / "target")
    shutil.copytree(  # with its git repository: the copy's commits are its own
        Path(demo_env["PORTAL_DBT_PROJECT_DIR"]),
        dest / "dbt",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    return {
        **demo_env,
        "PORTAL_DUCKDB_PATH": str(dest / "warehouse.duckdb"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{dest / 'catalog.db'}",
        "PORTAL_DBT_TARGET_DIR": str(dest / "target"),
        "PORTAL_DBT_PROJECT_DIR": str(dest / "dbt"),
    }


@pytest.fixture(scope="session")
def jaffle_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Bring-your-own-project: the public jaffle_shop_duckdb artifacts and its built database."""
    base = tmp_path_factory.mktemp("jaffle")
    database = base / "jaffle_shop.duckdb"
    with (
        gzip.open(FIXTURES / "jaffle_shop_duckdb" / "jaffle_shop.duckdb.gz") as src,
        database.open("wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    target = base / "target"
    target.mkdir()
    for name in ("manifest", "run_results", "catalog"):
        shutil.copy(FIXTURES / "jaffle_shop_duckdb" / f"{name}.json.gz", target / f"{name}.json.gz")
    return {
        "PORTAL_DUCKDB_PATH": str(database),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'catalog.db'}",
        "PORTAL_DBT_TARGET_DIR": str(target),
        # jaffle_shop has no data_products folder: its marts are the products here.
        "PORTAL_DATA_PRODUCTS_PATH": "models/customers.sql",
    }


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A real bare git repository, the project's PORTAL_GIT_REMOTE in the tests of products as code."""
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Apply an environment for code that reads os.environ (the Streamlit app, subprocesses)."""

    def apply(environ: dict[str, str]) -> None:
        for key in [k for k in os.environ if k.startswith("PORTAL_")]:
            monkeypatch.delenv(key)
        for key, value in environ.items():
            monkeypatch.setenv(key, value)

    yield apply
