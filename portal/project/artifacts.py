"""dbt artifacts (manifest, run_results, catalog) read into small typed objects.

Only what the portal uses is typed; the parsed JSON stays reachable as `.raw` so that
lineage selection can follow dbt's own fields without a second read. Every reader checks
`dbt_schema_version` and refuses versions it was not written for, naming the file, the
version found and the versions supported: a silently misread manifest would show users a
wrong catalog, which is worse than no catalog.

Reading is deliberately cheap (orjson, no validation of fields we do not use) because the
catalog must stay quick on projects with tens of thousands of nodes.
"""

from __future__ import annotations

import gc
import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from portal.errors import Unavailable

SUPPORTED = {
    "manifest": range(4, 13),
    "run-results": range(4, 7),
    "catalog": range(1, 2),
}

_VERSION_RE = re.compile(r"/dbt/(?P<kind>[a-z-]+)/v(?P<version>\d+)\.json$")
# The `model` argument of a generic test: "{{ get_where_subquery(ref('orders')) }}" or source('a', 'b').
_TESTED_RELATION = re.compile(r"\b(?P<fn>ref|source)\((?P<args>[^)]*)\)")
_QUOTED = re.compile(r"""\s*['"]([^'"]+)['"]\s*""")


class ArtifactError(Unavailable):
    """An artifact is missing, unreadable or of a schema version the portal does not read."""

    headline = "The dbt project's artifacts cannot be read."


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic structures.

    A big manifest is about a million small objects that all stay alive; full collections
    triggered while they are created find nothing to free and double the time of a read.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_json(path: Path) -> dict[str, Any]:
    """Read `path` (plain or `.gz`) as a JSON object."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path} does not exist. Run `dbt build` (or `make demo`) to create it.") from exc
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:  # BadGzipFile is an OSError; EOFError: truncated
            raise ArtifactError(
                f"{path} is not a readable gzip file ({exc}). Re-run dbt to regenerate it."
            ) from exc
    try:
        with gc_paused():
            parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}). Re-run dbt to regenerate it.") from exc
    if not isinstance(parsed, dict):
        raise ArtifactError(f"{path} holds a JSON {type(parsed).__name__}, not a dbt artifact object.")
    return parsed


def find_artifact(target_dir: Path, name: str) -> Path | None:
    """`<name>.json` or `<name>.json.gz` in `target_dir`, whichever exists."""
    for candidate in (target_dir / f"{name}.json", target_dir / f"{name}.json.gz"):
        if candidate.exists():
            return candidate
    return None


def schema_version(raw: dict[str, Any], path: Path, kind: str) -> int:
    """The artifact's schema version, or an ArtifactError saying what is supported."""
    supported = SUPPORTED[kind]
    wanted = f"{kind} v{supported.start} to v{supported.stop - 1}"
    url = str(raw.get("metadata", {}).get("dbt_schema_version", ""))
    match = _VERSION_RE.search(url)
    if match is None:
        raise ArtifactError(
            f"{path} has no recognisable dbt_schema_version (found {url!r}); the portal reads {wanted}."
        )
    version = int(match["version"])
    if match["kind"] != kind:
        raise ArtifactError(
            f"{path} is a dbt {match['kind']} v{version} artifact, not a {kind}; the portal reads {wanted} "
            f"here. Check that the file passed as the {kind} is the right one."
        )
    if version not in supported:
        raise ArtifactError(
            f"{path} is {kind} v{version}; the portal reads {wanted}. "
            "Regenerate it with a dbt version that writes a supported schema."
        )
    return version


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    description: str = ""
    data_type: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestInfo:
    """What a test checks: its generic name (or 'singular'), the column and its arguments.

    `attached_node` is the model, seed, snapshot or source under test. dbt records it only for
    refable nodes and only since manifest v10; otherwise it is recovered from the test's
    `model` argument. Singular tests have none (they may read many nodes).
    """

    name: str
    column_name: str | None
    kwargs: dict[str, Any]
    attached_node: str | None


@dataclass(frozen=True, slots=True)
class Node:
    """A manifest node or source, flattened to the fields the portal shows."""

    unique_id: str
    resource_type: str
    name: str
    package_name: str
    original_file_path: str
    fqn: tuple[str, ...]
    description: str
    tags: tuple[str, ...]
    meta: dict[str, Any]
    config: dict[str, Any]
    columns: dict[str, Column]
    depends_on: tuple[str, ...]
    database: str | None
    schema: str | None
    alias: str | None
    relation_name: str | None
    raw_code: str
    compiled_code: str | None
    group: str | None
    access: str | None
    test: TestInfo | None = None
    source_name: str | None = None

    @property
    def materialized(self) -> str | None:
        return self.config.get("materialized")

    @property
    def contract_enforced(self) -> bool:
        return bool((self.config.get("contract") or {}).get("enforced"))

    @property
    def label(self) -> str:
        """How people name it: `source.table` for sources, the name otherwise."""
        return f"{self.source_name}.{self.name}" if self.source_name else self.name


def _columns(raw: dict[str, Any]) -> dict[str, Column]:
    return {
        name: Column(
            name=col.get("name") or name,
            description=col.get("description") or "",
            data_type=col.get("data_type"),
            meta=col.get("meta") or {},
            tags=tuple(col.get("tags") or ()),
        )
        for name, col in (raw.get("columns") or {}).items()
    }


@dataclass(frozen=True, slots=True)
class _Relations:
    """unique_ids by the names a test's `model` argument uses: ref('name'), source('src', 'table')."""

    refs: dict[str, str]
    sources: dict[tuple[str, str], str]

    def tested_by(self, model_arg: str) -> str | None:
        match = _TESTED_RELATION.search(model_arg)
        if match is None:
            return None
        # Positional string arguments only: ref('pkg', 'name') names the model last; v=2 is skipped.
        args = [m[1] for part in match["args"].split(",") if (m := _QUOTED.fullmatch(part))]
        if match["fn"] == "source":
            return self.sources.get((args[0], args[1])) if len(args) == 2 else None
        return self.refs.get(args[-1]) if args else None


def _test_info(raw: dict[str, Any], relations: _Relations) -> TestInfo:
    metadata = raw.get("test_metadata") or {}
    kwargs = metadata.get("kwargs") or {}
    attached = raw.get("attached_node")
    if attached is None:
        # No attached_node before manifest v10, nor for tests on sources: read the `model` argument.
        attached = relations.tested_by(str(kwargs.get("model", "")))
    return TestInfo(
        name=metadata.get("name") or "singular",
        column_name=raw.get("column_name") or kwargs.get("column_name"),
        kwargs=kwargs,
        attached_node=attached,
    )


def _node(raw: dict[str, Any], relations: _Relations) -> Node:
    config = raw.get("config") or {}
    meta = {**(raw.get("meta") or {}), **(config.get("meta") or {})}
    resource_type = raw.get("resource_type", "")
    return Node(
        unique_id=raw["unique_id"],
        resource_type=resource_type,
        name=raw.get("name", ""),
        package_name=raw.get("package_name", ""),
        original_file_path=raw.get("original_file_path", ""),
        fqn=tuple(raw.get("fqn") or ()),
        description=raw.get("description") or "",
        tags=tuple(raw.get("tags") or ()),
        meta=meta,
        config=config,
        columns=_columns(raw),
        depends_on=tuple((raw.get("depends_on") or {}).get("nodes") or ()),
        database=raw.get("database"),
        schema=raw.get("schema"),
        alias=raw.get("alias") or raw.get("identifier"),
        relation_name=raw.get("relation_name"),
        raw_code=raw.get("raw_code") or raw.get("raw_sql") or "",
        compiled_code=raw.get("compiled_code") or raw.get("compiled_sql"),
        group=raw.get("group") or config.get("group"),
        access=raw.get("access") or config.get("access"),
        test=_test_info(raw, relations) if resource_type == "test" else None,
        source_name=raw.get("source_name"),
    )


@dataclass(frozen=True)
class Manifest:
    path: Path
    schema_version: int
    dbt_version: str
    adapter_type: str | None
    project_name: str | None
    generated_at: str | None
    nodes: dict[str, Node]
    sources: dict[str, Node]
    raw: dict[str, Any]

    def get(self, unique_id: str) -> Node | None:
        return self.nodes.get(unique_id) or self.sources.get(unique_id)

    def models(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.resource_type == "model"]

    def tests_of(self, unique_id: str) -> list[Node]:
        """Tests attached to a node, in manifest order."""
        return self._tests_by_node().get(unique_id, [])

    def _tests_by_node(self) -> dict[str, list[Node]]:
        cached = self.__dict__.get("_tests_index")
        if cached is None:
            cached = {}
            for node in self.nodes.values():
                if node.test is not None and node.test.attached_node:
                    cached.setdefault(node.test.attached_node, []).append(node)
            object.__setattr__(self, "_tests_index", cached)
        return cached


def load_manifest(path: Path) -> Manifest:
    raw = read_json(path)
    version = schema_version(raw, path, "manifest")
    metadata = raw.get("metadata", {})
    raw_nodes: dict[str, Any] = raw.get("nodes") or {}
    raw_sources: dict[str, Any] = raw.get("sources") or {}
    # To attach tests that lack attached_node to what they test.
    relations = _Relations(
        refs={
            n["name"]: uid
            for uid, n in raw_nodes.items()
            if n.get("resource_type") in {"model", "seed", "snapshot"}
        },
        sources={(s.get("source_name", ""), s.get("name", "")): uid for uid, s in raw_sources.items()},
    )
    # A disabled node (dbt keeps tests of disabled models in `nodes`, with enabled: false) is not
    # part of the project as dbt runs it: no build, no `dbt ls`, no test results to show.
    nodes = {
        uid: _node(n, relations)
        for uid, n in raw_nodes.items()
        if (n.get("config") or {}).get("enabled", True) is not False
    }
    sources = {uid: _node(s, relations) for uid, s in raw_sources.items()}
    project = next((n.package_name for n in nodes.values() if n.resource_type == "model"), None)
    return Manifest(
        path=path,
        schema_version=version,
        dbt_version=str(metadata.get("dbt_version", "")),
        adapter_type=metadata.get("adapter_type"),
        project_name=metadata.get("project_name") or project,
        generated_at=metadata.get("generated_at"),
        nodes=nodes,
        sources=sources,
        raw=raw,
    )


@dataclass(frozen=True, slots=True)
class RunResultEntry:
    """One node's entry in run_results.json (the catalog database's row of it is `NodeResult`)."""

    unique_id: str
    status: str
    execution_time: float
    failures: int | None
    message: str | None
    started_at: str | None
    completed_at: str | None


@dataclass(frozen=True)
class RunResults:
    path: Path
    schema_version: int
    invocation_id: str
    generated_at: str
    elapsed_time: float
    command: str | None
    results: list[RunResultEntry]
    selector: str | None = None  # `--select` as given to dbt, if any
    target: str | None = None  # `--target` as given to dbt, if any


def load_run_results(path: Path) -> RunResults:
    raw = read_json(path)
    version = schema_version(raw, path, "run-results")
    metadata = raw.get("metadata", {})
    results = []
    for result in raw.get("results") or []:
        timing = {t.get("name"): t for t in result.get("timing") or []}
        execute = timing.get("execute") or {}
        first = (result.get("timing") or [{}])[0]
        results.append(
            RunResultEntry(
                unique_id=result["unique_id"],
                status=str(result.get("status", "")),
                execution_time=float(result.get("execution_time") or 0.0),
                failures=result.get("failures"),
                message=result.get("message"),
                started_at=first.get("started_at"),
                completed_at=execute.get("completed_at"),
            )
        )
    args = raw.get("args") or {}
    select = args.get("select")
    return RunResults(
        path=path,
        schema_version=version,
        invocation_id=str(metadata.get("invocation_id", "")),
        generated_at=str(metadata.get("generated_at", "")),
        elapsed_time=float(raw.get("elapsed_time") or 0.0),
        command=args.get("which"),
        results=results,
        selector=(" ".join(select) if isinstance(select, list) else select) or None,
        target=args.get("target"),
    )


@dataclass(frozen=True, slots=True)
class CatalogColumn:
    name: str
    type: str
    index: int
    comment: str | None


@dataclass(frozen=True, slots=True)
class CatalogTable:
    unique_id: str
    database: str | None
    schema: str | None
    name: str
    table_type: str | None
    columns: dict[str, CatalogColumn]
    row_count: int | None

    def column_type(self, name: str) -> str | None:
        col = self.columns.get(name) or self.columns.get(name.lower()) or self.columns.get(name.upper())
        return col.type if col else None


@dataclass(frozen=True)
class CatalogArtifact:
    """dbt's catalog.json: the warehouse's tables and column types (not the catalog database)."""

    path: Path
    generated_at: str
    tables: dict[str, CatalogTable]

    def get(self, unique_id: str) -> CatalogTable | None:
        return self.tables.get(unique_id)


def _catalog_table(uid: str, raw: dict[str, Any]) -> CatalogTable:
    metadata = raw.get("metadata") or {}
    stats = raw.get("stats") or {}
    rows = (stats.get("num_rows") or stats.get("row_count") or {}).get("value")
    columns = {
        name: CatalogColumn(
            name=c.get("name", name),
            type=c.get("type", ""),
            index=c.get("index", 0),
            comment=c.get("comment"),
        )
        for name, c in (raw.get("columns") or {}).items()
    }
    return CatalogTable(
        unique_id=uid,
        database=metadata.get("database"),
        schema=metadata.get("schema"),
        name=metadata.get("name", ""),
        table_type=metadata.get("type"),
        columns=columns,
        row_count=int(rows) if isinstance(rows, int | float) else None,
    )


def load_catalog(path: Path) -> CatalogArtifact:
    raw = read_json(path)
    schema_version(raw, path, "catalog")
    tables = {uid: _catalog_table(uid, t) for uid, t in (raw.get("nodes") or {}).items()}
    tables.update({uid: _catalog_table(uid, t) for uid, t in (raw.get("sources") or {}).items()})
    return CatalogArtifact(
        path=path, generated_at=str(raw.get("metadata", {}).get("generated_at", "")), tables=tables
    )


@dataclass(frozen=True)
class Artifacts:
    """What one target directory holds. Only the manifest is required."""

    manifest: Manifest
    run_results: RunResults | None
    catalog: CatalogArtifact | None


def load_artifacts(target_dir: Path) -> Artifacts:
    manifest_path = find_artifact(target_dir, "manifest")
    if manifest_path is None:
        raise ArtifactError(
            f"No manifest.json in {target_dir}. Build the project first (`make demo` for the demo, "
            "or `dbt build` / `dbt parse` in your project), or point PORTAL_DBT_TARGET_DIR at its target folder."
        )
    run_results_path = find_artifact(target_dir, "run_results")
    catalog_path = find_artifact(target_dir, "catalog")
    return Artifacts(
        manifest=load_manifest(manifest_path),
        run_results=load_run_results(run_results_path) if run_results_path else None,
        catalog=load_catalog(catalog_path) if catalog_path else None,
    )
