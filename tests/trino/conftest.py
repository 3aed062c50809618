"""The trino tier: a real Trino + Nessie stack on loopback, started by `make test-trino`.

These tests never start servers themselves and never skip: if the stack is not up they FAIL,
saying how to start it. `make test` does not collect them (pyproject addopts: -m "not trino");
`make test-trino` starts the stack (deploy/stack.sh), loads the demo silver tables, runs
`pytest -m trino tests/trino` and stops the stack again if it started it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from trino_stack import CATALOG_FILE, HOW_TO_START, fetch, trino_settings

from portal.creation.publish.nessie import WapConfig
from portal.project.dbt_runner import DbtResult, run_dbt
from portal.settings import ROOT, Settings


def _unreachable(url: str, name: str) -> str | None:
    try:
        httpx.get(url, timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        return f"{name} does not answer at {url} ({exc})."
    return None


@pytest.fixture(scope="session", autouse=True)
def stack() -> Settings:
    """Fails every test here with a clear message unless Trino and Nessie both answer."""
    settings = trino_settings()
    if not CATALOG_FILE.exists():
        pytest.fail(
            f"The local stack has not been configured ({CATALOG_FILE} is missing). {HOW_TO_START}",
            pytrace=False,
        )
    wap_config = WapConfig.from_catalog_file(CATALOG_FILE)
    base = f"{settings.trino_http_scheme}://{settings.trino_host}:{settings.trino_port}"
    problem = _unreachable(f"{base}/v1/info", "Trino") or _unreachable(
        f"{wap_config.nessie_uri}/config", "Nessie"
    )
    if problem is None and httpx.get(f"{base}/v1/info", timeout=5).json().get("starting", True):
        problem = f"Trino at {base} is still starting."
    if problem:
        pytest.fail(f"{problem} {HOW_TO_START}", pytrace=False)
    loaded = fetch(
        settings,
        f"select count(*) from {settings.trino_catalog}.information_schema.tables "
        f"where table_schema = '{settings.silver_schema}'",
    )[0][0]
    if loaded < 7:
        pytest.fail(
            f"The silver tables are not loaded into {settings.trino_catalog}.{settings.silver_schema} "
            f"({loaded} of 7 found). {HOW_TO_START}",
            pytrace=False,
        )
    return settings


@pytest.fixture(scope="session")
def trino_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the demo dbt project (its own dbt lock; tests may add models to it)."""
    copy = tmp_path_factory.mktemp("trino-project") / "dbt"
    shutil.copytree(
        ROOT / "dbt", copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml")
    )
    return copy


@pytest.fixture(scope="session")
def project_settings(
    stack: Settings, trino_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    base = tmp_path_factory.mktemp("trino-portal")
    return trino_settings(
        dbt_project_dir=trino_project,
        dbt_target_dir=str(base / "target"),
        catalog_db_url=f"sqlite:///{base / 'catalog.db'}",
    )


@pytest.fixture(scope="session")
def trino_build(project_settings: Settings) -> DbtResult:
    """`dbt build --target trino` of the whole demo project, once per session.

    Its run_results.json is kept as build_run_results.json: later dbt commands in the session
    (a second incremental build, docs generate) overwrite run_results.json.
    """
    result = run_dbt(project_settings, ["build"])
    results = project_settings.target_dir / "run_results.json"
    if results.exists():
        shutil.copy(results, project_settings.target_dir / "build_run_results.json")
    return result


@pytest.fixture(scope="session")
def wap_config(stack: Settings) -> WapConfig:
    """How write-audit-publish reaches Nessie and copies the `nessie` catalog (from the stack's file)."""
    return WapConfig.from_catalog_file(CATALOG_FILE)


@pytest.fixture(scope="session")
def built(trino_build: DbtResult) -> DbtResult:
    """The session build, for tests that need its tables: fails them if the build failed."""
    if not trino_build.ok:
        pytest.fail(f"dbt build --target trino failed:\n{trino_build.tail(40)}", pytrace=False)
    return trino_build
