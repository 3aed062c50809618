"""The generated Trino rules: restricted tables readable by exactly who may, the rest as before."""

from __future__ import annotations

import json
from pathlib import Path

from portal.warehouse.trino_rules import EVERY_PRIVILEGE, RestrictedTable, render_rules, write_rules

BASE = {
    "catalogs": [{"catalog": ".*", "allow": "all"}],
    "impersonation": [{"original_user": "portal", "new_user": ".*"}],
}


def test_restricted_tables_come_first_and_everything_else_stays_open() -> None:
    table = RestrictedTable(
        "nessie", "gold", "dp_revenue_analytics", "finance-analytics-team", ("carol", "a.b")
    )
    rules = render_rules(BASE, [table], service_user="portal")
    assert rules["catalogs"] == BASE["catalogs"] and rules["impersonation"] == BASE["impersonation"]
    tables = rules["tables"]
    assert tables[0] == {"user": "portal", "privileges": EVERY_PRIVILEGE}
    where = {"catalog": "nessie", "schema": "gold", "table": "dp_revenue_analytics"}
    assert {"group": "finance\\-analytics\\-team", **where, "privileges": ["SELECT"]} in tables
    assert {"user": "a\\.b", **where, "privileges": ["SELECT"]} in tables  # a name, not a pattern
    assert tables[-2] == {**where, "privileges": []}  # nobody else
    assert tables[-1] == {"privileges": EVERY_PRIVILEGE}  # other tables as without rules


def test_rules_are_written_atomically_and_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    rules = render_rules(BASE, [], service_user="portal")
    assert write_rules(path, rules) and json.loads(path.read_text()) == rules
    assert not write_rules(path, rules)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
