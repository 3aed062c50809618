"""A versioned dbt model is one catalog entry naming its versions: on the real manifest of
dbt-project-evaluator's integration tests (int_model_5: v1 deprecated in 2024, v2 the latest and
deprecated from 2029, v3 a prerelease), and on a real manifest given versions with no latest."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portal.catalog.browse import CatalogQuery, browse
from portal.catalog.detail import product_detail
from portal.project.artifacts import load_manifest
from portal.project.versions import model_versions, versions_text
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import FIXTURES

EVALUATOR = FIXTURES / "dbt_project_evaluator_it"
MODEL = "model.dbt_project_evaluator_integration_tests.int_model_5"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PortalService:
    base = tmp_path_factory.mktemp("versions")
    return PortalService(
        Settings.from_env(
            {
                "PORTAL_DBT_TARGET_DIR": str(EVALUATOR),
                "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'catalog.db'}",
                "PORTAL_DATA_PRODUCTS_PATH": "models/marts",
            }
        )
    )


def test_a_versioned_model_is_one_entry_as_its_latest_version(service: PortalService) -> None:
    for include_all_models in (False, True):
        listed = [
            e for e in service.entries(include_all_models=include_all_models) if e.name == "int_model_5"
        ]
        assert len(listed) == 1
        (entry,) = listed
        assert (entry.unique_id, entry.version) == (f"{MODEL}.v2", "2")  # dbt's latest_version, not v3
        assert [(v.version, v.unique_id) for v in entry.versions] == [
            ("1", f"{MODEL}.v1"),
            ("2", f"{MODEL}.v2"),
            ("3", f"{MODEL}.v3"),
        ]
    found = [h.name for h in browse(service, CatalogQuery(text="int_model_5", include_all_models=True))]
    assert found == ["int_model_5"]


def test_the_versions_say_latest_prerelease_and_deprecated(service: PortalService) -> None:
    entry = service.entry("int_model_5")
    v1, v2, v3 = entry.versions
    assert (v1.latest, v2.latest, v3.latest) == (False, True, False)
    assert (v1.prerelease, v2.prerelease, v3.prerelease) == (False, False, True)
    assert v1.deprecation_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert v3.deprecation_date is None
    in_2026 = datetime(2026, 6, 1, tzinfo=UTC)
    assert versions_text(entry.versions, in_2026) == "v1 (deprecated), v2 (latest), v3 (prerelease)"
    in_2030 = datetime(2030, 1, 1, tzinfo=UTC)
    assert (
        versions_text(entry.versions, in_2030) == "v1 (deprecated), v2 (latest, deprecated), v3 (prerelease)"
    )
    assert all(v.relation_name is None for v in entry.versions)  # ephemeral: dbt names no relation


def test_the_product_is_registered_as_the_same_latest_version(service: PortalService) -> None:
    from catalog_db.models import DataProduct

    service.artifacts()
    with service.sessions() as session:
        row = session.query(DataProduct).filter_by(name="int_model_5").one()
    assert row.unique_id == f"{MODEL}.v2"


def test_an_older_version_still_opens_as_itself(service: PortalService) -> None:
    """Lineage links a version's node; its page shows that version, with the model's versions."""
    entry = service.entry(f"{MODEL}.v1")
    assert (entry.unique_id, entry.version, len(entry.versions)) == (f"{MODEL}.v1", "1", 3)
    assert product_detail(service, f"{MODEL}.v3").node.unique_id == f"{MODEL}.v3"
    assert product_detail(service, "int_model_5").node.unique_id == f"{MODEL}.v2"


def test_selectors_still_see_every_version_node(service: PortalService) -> None:
    lineage = service.lineage()
    assert set(lineage.select("int_model_5")) == {f"{MODEL}.v1", f"{MODEL}.v2", f"{MODEL}.v3"}
    assert set(lineage.select("int_model_5,version:latest")) == {f"{MODEL}.v2"}
    assert set(lineage.select("int_model_5.v1")) == {f"{MODEL}.v1"}


def _versioned_jaffle(tmp_path: Path, versions: list[Any]) -> Path:
    """jaffle_shop_duckdb's real manifest with `customers` split into versions naming no latest."""
    raw = json.loads(gzip.decompress((FIXTURES / "jaffle_shop_duckdb" / "manifest.json.gz").read_bytes()))
    node = raw["nodes"].pop("model.jaffle_shop.customers")
    for version in versions:
        uid = f"model.jaffle_shop.customers.v{version}"
        raw["nodes"][uid] = dict(node, unique_id=uid, version=version, latest_version=None)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    return path


def test_without_a_latest_version_the_highest_is_latest_compared_as_dbt_does(tmp_path: Path) -> None:
    # As numbers when all are numbers: 10 is newer than 9 (and than "2" compared as text).
    by_id = model_versions(load_manifest(_versioned_jaffle(tmp_path, [2, 9, 10])))
    versions = by_id["model.jaffle_shop.customers.v2"]
    assert [(v.version, v.latest) for v in versions] == [("2", False), ("9", False), ("10", True)]
    assert not any(v.prerelease for v in versions)
    # dbt compares as text when one is not a number: "9" is newer than "10b".
    by_id = model_versions(load_manifest(_versioned_jaffle(tmp_path, [9, "10b"])))
    assert [(v.version, v.latest) for v in by_id["model.jaffle_shop.customers.v9"]] == [
        ("10b", False),
        ("9", True),
    ]


def test_unversioned_models_have_no_versions(service: PortalService) -> None:
    entry = service.entry("int_model_4")
    assert (entry.version, entry.versions) == (None, ())
