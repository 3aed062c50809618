"""The rules that keep the house standing (docs/ARCHITECTURE.md), checked on the source itself.

Each rule reads the code with `ast`, so it sees every import: module level, inside functions
(the CLI's lazy imports) and under `TYPE_CHECKING` alike, since a cycle hidden behind
TYPE_CHECKING is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"

# Low to high: a unit may import its own layer and the ones below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "settings"),
    ("catalog_db",),
    ("audit",),
    ("project", "warehouse", "lineage", "auth"),
    ("service",),
    ("integrations",),
    ("runs",),
    ("creation", "observability"),
    ("catalog",),
    ("contracts",),
    ("jobs", "demo"),
    ("cli", "api", "ui", "__main__"),
)
FACES = {"cli", "api", "ui", "__main__"}
MAX_TOP_LEVEL_MODULES = 8
MAX_MODULE_LINES = 900


def _sources() -> list[Path]:
    return sorted(PORTAL.rglob("*.py"))


def _unit(module: str) -> str | None:
    """The package (or top-level module) a dotted module name belongs to."""
    parts = module.split(".")
    if parts[0] == "catalog_db":
        return "catalog_db"
    if parts[0] != "portal" or len(parts) < 2:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, resolved to absolute dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # `from portal import service` imports the module portal.service
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _layer_of(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"{unit!r} is in no layer; add it to LAYERS here and in docs/ARCHITECTURE.md")


def _unit_edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the files that make the edge."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in _sources():
        own = _unit(_module_name(path))
        if own is None:
            continue
        for module in _imports(path):
            other = _unit(module)
            if other is None or other == own:
                continue
            if other == "catalog_db" or (PORTAL / other).exists() or (PORTAL / f"{other}.py").exists():
                edges[(own, other)].append(str(path.relative_to(ROOT)))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {p.stem for p in PORTAL.glob("*.py")} | {
        p.name for p in PORTAL.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    units.discard("__init__")
    for unit in units:
        _layer_of(unit)


def test_layers_import_downward_only() -> None:
    upward = [
        f"{files[0]} ({own}) imports {other}, a higher layer"
        for (own, other), files in sorted(_unit_edges().items())
        if _layer_of(other) > _layer_of(own)
    ]
    assert upward == []


def test_no_import_cycle_between_packages() -> None:
    graph = nx.DiGraph(list(_unit_edges()))
    assert list(nx.simple_cycles(graph)) == []


def test_the_service_facade_imports_no_feature() -> None:
    features = {"observability", "catalog", "creation", "jobs", "audit", "runs", "demo"}
    imported = {_unit(m) for m in _imports(PORTAL / "service.py")}
    assert imported & features == set()


def test_portal_has_few_top_level_modules() -> None:
    modules = sorted(p.name for p in PORTAL.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_no_module_is_too_long_to_read() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_one_exception_root() -> None:
    """Every exception class the portal defines is a PortalError (portal/errors.py)."""
    builtin_roots = {"Exception", "ValueError", "LookupError", "RuntimeError", "KeyError", "OSError"}
    stray = []
    for path in [*_sources(), *(ROOT / "catalog_db").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & builtin_roots and not (path.name == "errors.py" and node.name == "PortalError"):
                    stray.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert stray == []


def test_engine_branches_stay_inside_the_warehouse_package() -> None:
    branch = re.compile(r"\.warehouse\s*[!=]=\s*['\"]")
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _sources()
        if "warehouse" not in p.relative_to(PORTAL).parts[:1]
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if branch.search(line)
    ]
    assert len(found) <= 2, found


def test_command_lines_live_in_the_cli_package() -> None:
    parsers = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if "argparse" in {m.split(".")[0] for m in _imports(p)} and p.relative_to(PORTAL).parts[0] != "cli"
    ]
    assert parsers == []


@pytest.mark.parametrize("face", sorted(FACES - {"__main__"}))
def test_the_core_imports_no_face(face: str) -> None:
    """The faces sit on the core; the core never reaches back up into one of them."""
    offenders = [
        f"{own} imports {other}" for (own, other) in _unit_edges() if other == face and own not in FACES
    ]
    assert offenders == []


def test_unit_tests_mirror_the_packages() -> None:
    """tests/unit/<package>/ holds the unit tests of portal/<package>/ (or catalog_db/); a test
    of a top-level module (portal/settings.py) sits in tests/unit/ itself, next to this one."""
    unit = ROOT / "tests" / "unit"
    packages = {p.name for p in PORTAL.iterdir() if (p / "__init__.py").exists()} | {"catalog_db"}
    modules = {p.stem for p in PORTAL.glob("*.py")}
    folders = {p.name for p in unit.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= packages, "a folder of tests/unit/ is named after the package it tests"
    for folder in folders:
        for path in (unit / folder).iterdir():
            assert path.name.startswith("test_") or path.is_dir(), f"{path}: only tests (and their data) here"
    flat = {p.stem.removeprefix("test_") for p in unit.glob("test_*.py")} - {"architecture"}
    assert flat <= modules, "a flat unit test is named after the top-level module it tests"


def test_audit_is_the_one_writer_of_events() -> None:
    """Only portal/audit.py constructs AuditEvent and UsageEvent rows; everything else calls it."""
    events = {"AuditEvent", "UsageEvent"}
    writers = []
    for path in _sources():
        if path == PORTAL / "audit.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        # `from catalog_db.models import AuditEvent as Event` constructs one all the same
        names = set(events) | {
            alias.asname
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if alias.name in events and alias.asname
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if (isinstance(func, ast.Name) and func.id in names) or (
                isinstance(func, ast.Attribute) and func.attr in events  # models.AuditEvent(...)
            ):
                writers.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(func)}(...)")
    assert writers == [], "record events through portal.audit (add_event, record_event, record_read)"


def test_no_two_test_files_share_a_name() -> None:
    """pytest imports test modules by their file name (tests/ has no packages): a second
    test_x.py elsewhere stops the whole collection."""
    seen: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
