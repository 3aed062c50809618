"""How a run's write-audit-publish record is read back for the run view and the API."""

from __future__ import annotations

import pytest

from portal.creation.publish.common import PublishRecord

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
