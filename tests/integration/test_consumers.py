"""Consumers as dbt exposures, on a private copy of the demo with the real dbt CLI: a registration is
an exposure file in the project, a commit on main by the registrant, in the manifest after `dbt
parse`, selected by `+exposure:<name>`, in the lineage graph and named by impact analysis; a
refusal (bad input, a taken name, a project dbt refuses) leaves files, git and manifest as they were."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from catalog_db.models import AuditEvent
from portal.auth.access import PermissionDenied, Principal
from portal.creation.consumers import (
    ConsumerExists,
    ConsumerRefused,
    ConsumerRequest,
    consumers_of,
    derived_name,
    register,
    remove,
)
from portal.lineage.graph import impact_by_owner
from portal.project.dbt_runner import dbt_argv, dbt_environment
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo
from tests.products_in_git import git

pytestmark = pytest.mark.slow
FINN = Principal("finn@example.com", kind="oidc", groups=("finance-bi",), role="viewer")
VERA = Principal("vera@example.com", kind="oidc", groups=("marketing",), role="viewer")
OWNER = Principal("olive@example.com", kind="oidc", groups=("finance-analytics-team",), role="viewer")
FOLDER = "models/data_products/consumers"
BOARD = ConsumerRequest(
    owner_name="finance-bi",
    owner_email="finance-bi@example.com",
    description="The weekly revenue board.",
    url="https://bi.example.com/dashboards/42",
    type="dashboard",
    maturity="high",
)


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> PortalService:
    return PortalService(Settings.from_env(copy_demo(demo_env, tmp_path / "portal")))


def dbt_ls(settings: Settings, select: str) -> set[str]:
    """What the real dbt CLI selects, models and exposures by unique id."""
    argv = [*dbt_argv(settings, ["ls", "--select", select, "--resource-type", "model", "--resource-type",
                                 "exposure", "--output", "json", "--output-keys", "unique_id", "--quiet"])]  # fmt: skip
    done = subprocess.run(argv, env=dbt_environment(settings), capture_output=True, text=True, check=True)
    return {yaml.safe_load(line)["unique_id"] for line in done.stdout.splitlines() if line.startswith("{")}


def snapshot(service: PortalService) -> tuple[str, str, bytes]:
    """main's sha, the checkout's status and the manifest's bytes: what a refusal must not change."""
    project = service.settings.dbt_project_dir
    manifest = (service.settings.target_dir / "manifest.json").read_bytes()
    return git(project, "rev-parse", "main"), git(project, "status", "--porcelain"), manifest


def test_a_registered_consumer_is_an_exposure_dbt_selects_and_impact_names(service: PortalService) -> None:
    project = service.settings.dbt_project_dir
    consumer = register(service, "dp_revenue_analytics", BOARD, FINN)
    name = derived_name("finance-bi", "dp_revenue_analytics")
    assert consumer.name == name == "finance_bi_dp_revenue_analytics"
    assert consumer.registered_by == FINN.user and consumer.registered_here
    assert (consumer.owner_name, consumer.owner_email, consumer.type, consumer.maturity) == (
        "finance-bi", "finance-bi@example.com", "dashboard", "high",
    )  # fmt: skip

    written = yaml.safe_load((project / FOLDER / f"{name}.yml").read_text())
    exposure = written["exposures"][0]
    assert exposure["depends_on"] == ["ref('dp_revenue_analytics')"]
    assert exposure["config"]["meta"]["registered_by"] == FINN.user

    # The manifest has it (dbt parse ran), and the real dbt CLI selects the product and its upstream.
    manifest = service.artifacts().manifest.raw
    assert manifest["exposures"][f"exposure.asgard.{name}"]["depends_on"]["nodes"] == [
        "model.asgard.dp_revenue_analytics"
    ]
    selected = dbt_ls(service.settings, f"+exposure:{name}")
    assert {
        f"exposure.asgard.{name}",
        "model.asgard.dp_revenue_analytics",
        "model.asgard.int_orders",
    } <= selected
    assert "model.asgard.dp_customer_360" not in selected

    # The portal's lineage: the exposure downstream of the product, and impact names it with its owner.
    lineage = service.lineage()
    assert lineage.graph.has_edge("model.asgard.dp_revenue_analytics", f"exposure.asgard.{name}")
    impacted = {i.unique_id: i for i in lineage.impact("model.asgard.int_orders")}
    assert impacted[f"exposure.asgard.{name}"].owner == "finance-bi"
    assert name in impacted["model.asgard.dp_revenue_analytics"].consumers
    owners = {group.owner: [n.name for n in group.nodes] for group in impact_by_owner(impacted.values())}
    assert owners["finance-bi"] == [name]

    # A commit on main, authored by the registrant; the checkout is main, nothing pending.
    assert git(project, "log", "-1", "--format=%an|%s", "main", "--", f"{FOLDER}/{name}.yml") == (
        f"{FINN.user}|Register {name} as a consumer of dp_revenue_analytics"
    )
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "branch", "--list", "product/*") == ""
    with service.sessions() as session:
        event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "consumer.registered")).one()
    assert (event.actor, event.object_id, event.detail["exposure"]) == (
        FINN.user,
        "dp_revenue_analytics",
        name,
    )
    assert [c.name for c in consumers_of(service, "dp_revenue_analytics")] == [name]

    # Someone else of another team may not remove it; the product's owner team may.
    with pytest.raises(PermissionDenied, match="only whoever registered it"):
        remove(service, "dp_revenue_analytics", name, VERA)
    remove(service, "dp_revenue_analytics", name, OWNER)
    assert not (project / FOLDER / f"{name}.yml").exists()
    assert consumers_of(service, "dp_revenue_analytics") == []
    assert f"exposure.asgard.{name}" not in service.artifacts().manifest.raw["exposures"]
    assert git(project, "log", "-1", "--format=%an|%s", "main") == (
        f"{OWNER.user}|Remove the consumer {name} of dp_revenue_analytics"
    )
    assert git(project, "status", "--porcelain") == ""


def test_bad_input_and_a_taken_name_are_refused_leaving_everything_as_it_was(service: PortalService) -> None:
    before = snapshot(service)
    bad = ConsumerRequest(
        owner_name="Finance BI",
        owner_email="not an address",
        description="{{ run_query('drop table x') }}",
        url="javascript:alert(1)",
        type="billboard",
        maturity="sky-high",
        name="Bad-Name",
    )
    with pytest.raises(ConsumerRefused) as refused:
        register(service, "dp_revenue_analytics", bad, FINN)
    fields = {p.field for p in refused.value.problems}
    assert fields == {"owner_name", "owner_email", "description", "url", "type", "maturity", "name"}
    assert "Jinja" in str(refused.value) and "billboard" in str(refused.value)
    assert snapshot(service) == before
    assert not (service.settings.dbt_project_dir / FOLDER).exists()

    register(service, "dp_revenue_analytics", BOARD, FINN)
    after_first = snapshot(service)
    with pytest.raises(
        ConsumerExists, match="already has an exposure named `finance_bi_dp_revenue_analytics`"
    ):
        register(service, "dp_customer_360", replace(BOARD, name="finance_bi_dp_revenue_analytics"), FINN)
    assert snapshot(service) == after_first


def test_a_project_dbt_refuses_is_left_as_it_was(service: PortalService) -> None:
    """The product's files went from the checkout by hand (the manifest still lists it): the
    exposure's ref cannot resolve, dbt parse fails, and the portal puts everything back."""
    project = service.settings.dbt_project_dir
    for suffix in ("sql", "yml"):
        (project / "models" / "data_products" / f"dp_product_performance.{suffix}").unlink()
    before = snapshot(service)
    with pytest.raises(ConsumerRefused, match="dbt refused the project"):
        register(service, "dp_product_performance", BOARD, FINN)
    assert snapshot(service) == before
    assert not (project / FOLDER).exists() or list((project / FOLDER).iterdir()) == []
    assert git(project, "branch", "--list", "product/*") == ""
