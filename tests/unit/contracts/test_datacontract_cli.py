"""The contracts through the real datacontract-cli: `lint` accepts every demo product's, `test`
passes them against the demo warehouse, and fails, naming the rule, where the data breaks one.

datacontract-cli pins duckdb<1.6, so it lives in .venv-tools (`make tools`; `make test` makes it),
not in the portal's .venv. DuckDB 1.5 cannot open a file DuckDB 2.0 wrote (storage version 69;
1.5 reads up to 68), so the tests copy the warehouse into a DuckDB file of 1.5's storage version
(`ATTACH ... (STORAGE_VERSION 'v1.5.0')`, `COPY FROM DATABASE`, with DuckDB 2.0), named
`warehouse.duckdb` like the original so that the views' catalog-qualified references resolve, and
point the contract's server there through datacontract's DATACONTRACT_DUCKDB_DATABASE.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from portal.contracts.facts import facts_of
from portal.contracts.odcs import contract_yaml, file_name
from portal.service import PortalService
from portal.settings import ROOT, Settings

DATACONTRACT = ROOT / ".venv-tools" / "bin" / "datacontract"
PRODUCTS = ("dp_customer_360", "dp_product_performance", "dp_revenue_analytics")


def datacontract(*args: str, database: Path | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not DATACONTRACT.exists():
        pytest.fail(
            f"{DATACONTRACT} is missing: run `make tools` (make test does) to install datacontract-cli."
        )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DATACONTRACT_")}
    if database is not None:
        environ["DATACONTRACT_DUCKDB_DATABASE"] = str(database)
    return subprocess.run(
        [str(DATACONTRACT), *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=300
    )


def readable_by_duckdb_1_5(warehouse: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    copy = folder / "warehouse.duckdb"
    with duckdb.connect() as connection:
        connection.execute(f"attach '{warehouse}' as source (read_only)")
        connection.execute(f"attach '{copy}' as warehouse (storage_version 'v1.5.0')")
        connection.execute("copy from database source to warehouse")
    return copy


@pytest.fixture(scope="module")
def service(demo_env: dict[str, str]) -> PortalService:
    return PortalService(Settings.from_env(demo_env))


@pytest.fixture(scope="module")
def contracts(service: PortalService, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contracts")
    written = {}
    for name in PRODUCTS:
        written[name] = folder / file_name(name)
        written[name].write_text(contract_yaml(facts_of(service, name)))
    return written


@pytest.fixture(scope="module")
def warehouse_1_5(service: PortalService, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return readable_by_duckdb_1_5(service.settings.duckdb_path, tmp_path_factory.mktemp("v15") / "demo")


def checks(result_file: Path) -> list[dict[str, Any]]:
    return list(json.loads(result_file.read_text())["checks"])


@pytest.mark.parametrize("name", PRODUCTS)
def test_lint_accepts_every_contract(contracts: dict[str, Path], name: str) -> None:
    linted = datacontract("lint", str(contracts[name]), cwd=contracts[name].parent)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "valid against ODCS v3.2.0" in linted.stdout


@pytest.mark.parametrize("name", PRODUCTS)
def test_the_demo_data_keeps_its_contract(
    contracts: dict[str, Path], warehouse_1_5: Path, name: str, tmp_path: Path
) -> None:
    result = tmp_path / "result.json"
    run = datacontract(
        "test", "--output-format", "json", "--output", str(result), str(contracts[name]),
        database=warehouse_1_5, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    ran = checks(result)
    assert [c["name"] for c in ran if c["result"] != "passed"] == []
    # Every quality rule ran (none skipped as unsupported), and so did the freshness promise.
    rules = {c["quality_id"] for c in ran if c.get("quality_id")}
    assert rules >= {"not_null_data_product_updated_at"}
    assert any(c["type"] == "servicelevel_freshness" for c in ran)


def test_a_duplicated_key_fails_naming_the_rule(
    contracts: dict[str, Path], warehouse_1_5: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken" / "warehouse.duckdb"
    broken.parent.mkdir()
    shutil.copy(warehouse_1_5, broken)
    with duckdb.connect(str(broken)) as connection:  # two customers now share customer_id 1
        connection.execute("update gold.dp_customer_360 set customer_id = 1 where customer_id = 2")
    result = tmp_path / "result.json"
    run = datacontract(
        "test", "--output-format", "json", "--output", str(result), str(contracts["dp_customer_360"]),
        database=broken, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    failed = [c for c in checks(result) if c["result"] == "failed"]
    assert {c.get("quality_id") for c in failed} >= {"unique_customer_id"}
    assert {c["field"] for c in failed} == {"customer_id"}
    assert "duplicate" in run.stdout and "customer_id" in run.stdout
