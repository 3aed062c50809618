"""Compiled SQL is given back only to nodes compiled from the same inputs (project/compiled.py)."""

from __future__ import annotations

import json
from pathlib import Path

from portal.project.compiled import carry_compiled, compiled_of


def _manifest(
    path: Path, *, checksum: str = "a", upstream: str = '"gold"."orders"', code: str | None, own: str
) -> Path:
    nodes = {
        "model.p.orders": {
            "relation_name": upstream,
            "depends_on": {"nodes": []},
            "checksum": {"checksum": "o"},
        },
        "model.p.x": {
            "relation_name": own,
            "depends_on": {"nodes": ["model.p.orders"]},
            "checksum": {"checksum": checksum},
            **({"compiled": True, "compiled_code": code} if code else {}),
        },
    }
    path.write_text(json.dumps({"nodes": nodes, "sources": {}}))
    return path


def _code(path: Path) -> str | None:
    return json.loads(path.read_text())["nodes"]["model.p.x"].get("compiled_code")


def test_the_same_inputs_get_their_compiled_sql_back(tmp_path: Path) -> None:
    code = 'select id from "gold"."orders"'
    known = compiled_of(_manifest(tmp_path / "before.json", code=code, own='"gold"."x"'))
    after = _manifest(tmp_path / "manifest.json", code=None, own='"gold"."x"')
    assert carry_compiled(after, known) == 1 and _code(after) == code


def test_changed_code_or_upstream_relations_stay_uncompiled(tmp_path: Path) -> None:
    known = compiled_of(
        _manifest(tmp_path / "b.json", code='select id from "gold"."orders"', own='"gold"."x"')
    )
    edited = _manifest(tmp_path / "edited.json", checksum="b", code=None, own='"gold"."x"')
    moved = _manifest(tmp_path / "moved.json", upstream='"silver"."orders"', code=None, own='"gold"."x"')
    assert carry_compiled(edited, known) == 0 and _code(edited) is None
    assert carry_compiled(moved, known) == 0 and _code(moved) is None


def test_sql_naming_the_schema_it_was_built_in_is_not_carried_elsewhere(tmp_path: Path) -> None:
    audit = '"audit"."x"'
    plain = compiled_of(_manifest(tmp_path / "a.json", code='select id from "gold"."orders"', own=audit))
    selfish = compiled_of(
        _manifest(tmp_path / "s.json", code=f"select id from {audit} union all select 1", own=audit)
    )
    first = _manifest(tmp_path / "m1.json", code=None, own='"gold"."x"')
    second = _manifest(tmp_path / "m2.json", code=None, own='"gold"."x"')
    assert carry_compiled(first, plain) == 1  # built in audit, same SQL in gold
    assert carry_compiled(second, selfish) == 0  # `{{ this }}` compiled to the audit relation


def test_sql_compiled_through_a_runs_branch_catalog_is_read_as_the_main_catalogs(tmp_path: Path) -> None:
    branch_sql = 'select id from "wap_r7"."silver"."orders" -- "wap_r7x". stays'
    audit = _manifest(
        tmp_path / "audit.json",
        upstream='"wap_r7"."silver"."orders"',
        code=branch_sql,
        own='"wap_r7"."gold"."x"',
    )
    main = '"nessie"."silver"."orders"'
    unmapped = _manifest(tmp_path / "m1.json", upstream=main, code=None, own='"nessie"."gold"."x"')
    mapped = _manifest(tmp_path / "m2.json", upstream=main, code=None, own='"nessie"."gold"."x"')
    assert carry_compiled(unmapped, compiled_of(audit)) == 0  # other upstream relations: not ours
    assert carry_compiled(mapped, compiled_of(audit, catalogs={"wap_r7": "nessie"})) == 1
    assert _code(mapped) == 'select id from "nessie"."silver"."orders" -- "wap_r7x". stays'
