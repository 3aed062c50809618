"""Impact analysis names everything downstream, grouped by who answers for it."""

from __future__ import annotations

from pathlib import Path

from portal.lineage.graph import Lineage, impact_by_owner
from portal.project.artifacts import load_manifest
from portal.settings import Settings


def demo_lineage(demo_env: dict[str, str]) -> Lineage:
    settings = Settings.from_env(demo_env)
    manifest = load_manifest(Path(settings.target_dir) / "manifest.json")
    return Lineage(manifest, data_products_path=settings.data_products_path)


def test_every_downstream_node_counts_not_only_products_and_exposures(demo_env: dict[str, str]) -> None:
    lineage = demo_lineage(demo_env)
    impacted = {i.name: i for i in lineage.impact("model.asgard.dp_customer_360")}
    # a metrics model reads the product: it is downstream, though neither a product nor an exposure
    assert impacted["metrics_customer_segments"].kind == "model"
    assert impacted["metrics_customer_segments"].distance == 1


def test_impact_groups_by_owner_with_data_products_first(demo_env: dict[str, str]) -> None:
    lineage = demo_lineage(demo_env)
    upstream = next(n.unique_id for n in lineage.manifest.models() if n.name == "int_orders")
    impacted = lineage.impact(upstream)
    groups = impact_by_owner(impacted)
    assert sum(len(g.nodes) for g in groups) == len(impacted)  # nobody dropped, nobody twice
    owners = [g.owner for g in groups]
    assert None not in owners[:-1]  # nodes nobody owns come last
    with_products = [g for g in groups if g.data_products]
    assert with_products and groups[: len(with_products)] == with_products
    for group in groups:
        kinds = [n.kind == "data_product" for n in group.nodes]
        assert kinds == sorted(kinds, reverse=True)  # a group's data products first
