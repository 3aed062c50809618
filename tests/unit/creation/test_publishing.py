"""How a run's write-audit-publish record is read back for the run view and the API, and which
publisher (write-audit-publish strategy) each engine gets, with what it says before any build."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.creation.publish.base import AUDIT_SCHEMA, PARTIAL_PARSE_FILE
from portal.creation.publish.duckdb import DuckDBPublisher
from portal.creation.publish.nessie import NessiePublisher
from portal.creation.publish.registry import publisher_for
from portal.runs import PublishRecord
from portal.settings import Settings

MAIN_BEFORE, BRANCH_HEAD, MERGED = "a" * 64, "b" * 64, "c" * 64


def nessie(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "engine": "nessie",
        "branch": "wap-r7-1a2b3c",
        "outcome": "published",
        "published": True,
        "main_hash_before": MAIN_BEFORE,
        "branch_hash": BRANCH_HEAD,
        "main_hash_after": MERGED,
        "branch_deleted": True,
        "message": "Built and tested on wap-r7-1a2b3c, merged into main.",
    }
    record.update(changes)
    return {"wap": record, "action": "product.created"}


def test_a_merged_nessie_run_names_its_branch_and_both_commits() -> None:
    record = PublishRecord.from_details(nessie())
    assert record is not None and record.published and record.branch == "wap-r7-1a2b3c"
    assert record.summary() == f"Nessie branch `wap-r7-1a2b3c`: merged into main ({'a' * 12} → {'c' * 12})"


def test_a_failed_nessie_run_says_main_is_untouched() -> None:
    record = PublishRecord.from_details(
        nessie(outcome="failed", published=False, main_hash_after=MAIN_BEFORE)
    )
    assert record is not None and not record.published
    assert (
        record.summary()
        == f"Nessie branch `wap-r7-1a2b3c`: failed, branch deleted, main untouched at {'a' * 12}"
    )
    kept = PublishRecord.from_details(nessie(outcome="error", published=False, branch_deleted=False))
    assert kept is not None and "branch left in place" in kept.summary()


def test_a_nessie_run_still_building_has_only_its_branch() -> None:
    details = {
        "wap": {"engine": "nessie", "branch": "wap-r8-000000", "outcome": "running", "published": False}
    }
    record = PublishRecord.from_details(details, status="running")
    assert record is not None and record.main_hash_before is None and record.branch_deleted is None
    assert record.summary() == "Nessie branch `wap-r8-000000`: building"


@pytest.mark.parametrize(
    ("wap", "status", "summary"),
    [
        ({"engine": "duckdb", "audit_schema": "audit", "published": True}, "success", "copied to gold"),
        # records written before the engine was stored are DuckDB's
        ({"audit_schema": "audit", "published": False}, "partial", "failed, gold untouched"),
        ({"audit_schema": "audit", "published": False}, "running", "building"),
    ],
)
def test_duckdb_runs_name_the_audit_schema(wap: dict[str, object], status: str, summary: str) -> None:
    record = PublishRecord.from_details({"wap": wap}, status=status)
    assert record is not None and record.engine == "duckdb" and record.branch is None
    assert record.summary() == f"audit schema `audit`: {summary}"


@pytest.mark.parametrize("details", [None, {}, {"refresh": True}, {"wap": "not a record"}, []])
def test_runs_that_publish_nothing_have_no_record(details: object) -> None:
    assert PublishRecord.from_details(details) is None


# --- the publisher of each engine ----------------------------------------------------------


def engine_settings(tmp_path: Path, warehouse: str, **environ: str) -> Settings:
    return Settings.from_env(
        {
            "PORTAL_WAREHOUSE": warehouse,
            "PORTAL_DBT_TARGET_DIR": str(tmp_path / "target"),
            "PORTAL_DUCKDB_PATH": str(tmp_path / "shop.duckdb"),
            "PORTAL_TRINO_CATALOG": "lake",
            **environ,
        }
    )


def test_duckdb_audits_in_the_audit_schema(tmp_path: Path) -> None:
    publisher = publisher_for(engine_settings(tmp_path, "duckdb"))
    assert isinstance(publisher, DuckDBPublisher) and publisher.unsupported() is None
    assert publisher.catalogs() == ("shop",)  # the file is attached under its stem
    assert publisher.pending_record("r1_abcdef") == {
        "engine": "duckdb",
        "audit_schema": AUDIT_SCHEMA,
        "published": False,
    }
    # the macro generate_schema_name.sql puts a model built under wap_audit/<name> in the audit schema
    assert publisher.audit_target("dp_orders") == tmp_path / "target" / "wap_audit" / "dp_orders"
    publisher.drop_audit("dp_orders")  # no warehouse file yet: nothing to drop, no error


def test_nessie_audits_on_a_branch_of_the_run(tmp_path: Path) -> None:
    catalog_file = tmp_path / "lake.properties"
    catalog_file.write_text(
        "connector.name=iceberg\niceberg.catalog.type=nessie\niceberg.nessie-catalog.uri=http://nessie:19120/api/v2\n"
    )
    settings = engine_settings(tmp_path, "trino", PORTAL_TRINO_CATALOG_PROPERTIES=str(catalog_file))
    publisher = publisher_for(settings)
    assert isinstance(publisher, NessiePublisher) and publisher.unsupported() is None
    assert publisher.config().nessie_uri == "http://nessie:19120/api/v2"
    assert publisher.catalogs() == ("lake",)
    assert publisher.pending_record("r1_abcdef") == {
        "engine": "nessie",
        "branch": "wap-r1-abcdef",
        "outcome": "running",
        "published": False,
    }
    # named apart from wap_audit/, which would put the model in the audit schema
    assert publisher.audit_target("dp_orders") == tmp_path / "target" / "wap_branch" / "dp_orders"
    publisher.drop_audit("dp_orders")  # the audit deletes its branch itself


def test_nessie_needs_the_catalog_file_and_says_which(tmp_path: Path) -> None:
    missing = tmp_path / "missing.properties"
    publisher = publisher_for(
        engine_settings(tmp_path, "trino", PORTAL_TRINO_CATALOG_PROPERTIES=str(missing))
    )
    reason = publisher.unsupported()
    assert reason is not None
    assert reason.startswith(
        "Products are published on Trino through a Nessie branch, which needs the catalog's"
    )
    assert str(missing) in reason
    assert reason.endswith("Set PORTAL_TRINO_CATALOG_PROPERTIES to the Trino catalog file of `lake`.")


def test_an_audit_target_is_emptied_of_a_previous_attempt(tmp_path: Path) -> None:
    for warehouse in ("duckdb", "trino"):
        publisher = publisher_for(engine_settings(tmp_path, warehouse))
        sql_path = tmp_path / "dp_orders.sql"
        sql_path.write_text("select 1 as id\n")
        stale = publisher.audit_target("dp_orders")
        stale.mkdir(parents=True, exist_ok=True)
        for name in ("run_results.json", PARTIAL_PARSE_FILE):
            (stale / name).write_text("{}")
        audit_dir = publisher.prepare_audit("dp_orders", sql_path)
        assert audit_dir == stale and not (audit_dir / "run_results.json").exists()
        # no parse state of the portal's to start from (none was written)
        assert not (audit_dir / PARTIAL_PARSE_FILE).exists()


def test_an_audit_target_refuses_a_name_that_is_not_a_product_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a valid product name"):
        publisher_for(engine_settings(tmp_path, "duckdb")).audit_target("../escape")
