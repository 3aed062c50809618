"""The audit and publish steps of creating a product, one function per engine.

Both build the product and its tests somewhere consumers do not read, and publish only when
the model and every test passed:

- **DuckDB** (`audit_on_duckdb`): `dbt build` into the schema `audit` (the audit build's target
  path `<target>/wap_audit/<name>` tells dbt/macros/generate_schema_name.sql to put that one
  model there), then a copy to gold in one short writable transaction. DuckDB has no branches,
  so the audit schema is the staging area. The audit target starts from the portal's own
  partial-parse state, so dbt parses only the product's files, not the whole project.
- **Trino + Nessie** (`audit_on_nessie`): `dbt build` on a Nessie branch cut from main, merged
  into main only if it passed (portal/creation/publish/nessie.py). The merge is the publish: an Iceberg table is
  never copied, and a failure leaves main's commit and every snapshot as they were.

Each returns an `Audit`: dbt's result, every node's outcome, whether it was published, and the
record the run keeps under `details["wap"]` (shown in the run view and the API's run).
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from portal.creation.publish import nessie as wap
from portal.creation.spec import NAME_RE
from portal.project.artifacts import find_artifact, load_manifest, load_run_results
from portal.project.dbt_runner import DbtResult, run_dbt
from portal.settings import Settings
from portal.warehouse import Relation, WarehouseError, WarehouseUnavailable, open_warehouse

AUDIT_SCHEMA = "audit"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
# A writable DuckDB connection must wait for readers (previews) to close theirs; they are short.
PUBLISH_WAIT_S = 15.0
_OK_NODE_STATUSES = frozenset({"success", "pass", "warn"})  # a warning test does not block publishing

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class NodeOutcome:
    """One node of the audit build: the model or one of its tests."""

    unique_id: str
    resource_type: str
    name: str  # the model name, or the test's generic name (unique, not_null, ...)
    column: str | None
    status: str
    message: str | None
    failures: int | None

    @property
    def ok(self) -> bool:
        return self.status in _OK_NODE_STATUSES


@dataclass(frozen=True)
class Audit:
    """What the audit build and the publish step did."""

    dbt: DbtResult
    outcomes: list[NodeOutcome]
    published: bool
    row_count: int | None = None
    error: str | None = None  # publishing itself failed (not the build): the message says why
    record: dict[str, Any] = field(default_factory=dict)  # the run's details["wap"]

    @property
    def publish(self) -> PublishRecord:
        """The record as the run view and the API read it back from the run."""
        read = PublishRecord.from_details({"wap": self.record})
        assert read is not None  # a dict always reads back
        return read


@dataclass(frozen=True)
class PublishRecord:
    """Where a creation run was audited and whether it was published, read back from a run's
    details["wap"] for the run view and the API. Nessie runs also have their branch and hashes."""

    engine: str  # duckdb or nessie
    published: bool
    outcome: str  # running, published, failed, conflict or error
    audit_schema: str | None = None
    branch: str | None = None
    main_hash_before: str | None = None
    branch_hash: str | None = None
    main_hash_after: str | None = None
    branch_deleted: bool | None = None
    message: str | None = None

    @classmethod
    def from_details(cls, details: Any, *, status: str | None = None) -> PublishRecord | None:
        """The record of a run's details (None for runs that publish nothing, e.g. refreshes).
        `status` is the run's own, for records that do not carry an outcome (DuckDB's)."""
        wap_details = details.get("wap") if isinstance(details, dict) else None
        if not isinstance(wap_details, dict):
            return None
        published = bool(wap_details.get("published"))

        def text(key: str) -> str | None:
            value = wap_details.get(key)
            return str(value) if value is not None else None

        outcome = text("outcome") or (
            "published" if published else ("running" if status in ("queued", "running") else "failed")
        )
        deleted = wap_details.get("branch_deleted")
        return cls(
            engine=text("engine") or "duckdb",  # records written before Nessie runs existed
            published=published,
            outcome=outcome,
            audit_schema=text("audit_schema"),
            branch=text("branch"),
            main_hash_before=text("main_hash_before"),
            branch_hash=text("branch_hash"),
            main_hash_after=text("main_hash_after"),
            branch_deleted=None if deleted is None else bool(deleted),
            message=text("message"),
        )

    def summary(self) -> str:
        """One line: where it was audited and what became of it."""
        if self.engine == "nessie":
            where = f"Nessie branch `{self.branch}`"
        else:
            where = f"audit schema `{self.audit_schema or AUDIT_SCHEMA}`"
        if self.outcome == "running":
            return f"{where}: building"
        if self.engine != "nessie":
            return f"{where}: " + ("copied to gold" if self.published else f"{self.outcome}, gold untouched")
        if self.published:
            return f"{where}: merged into main ({_short(self.main_hash_before)} → {_short(self.main_hash_after)})"
        kept = "deleted" if self.branch_deleted else "left in place"
        return f"{where}: {self.outcome}, branch {kept}, main untouched at {_short(self.main_hash_after)}"


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "?"


def wap_run_id(run_id: int) -> str:
    """The id of a run's Nessie branch (wap-r42-1a2b3c): the portal's run id, so the run view and
    Nessie's log agree, plus a random part, since another portal (or a fresh catalog database)
    may count its runs from 1 against the same Nessie."""
    return f"r{run_id}_{secrets.token_hex(3)}"


def pending_record(settings: Settings, wap_id: str) -> dict[str, Any]:
    """The run's details["wap"] while it builds: where the audit happens."""
    if settings.warehouse == "trino":
        return {
            "engine": "nessie",
            "branch": wap.branch_for(wap_id),
            "outcome": "running",
            "published": False,
        }
    return {"engine": "duckdb", "audit_schema": AUDIT_SCHEMA, "published": False}


def audit_target(settings: Settings, name: str) -> Path:
    """The audit build's dbt target directory, per product. On DuckDB its path is what puts the
    model in the audit schema (dbt/macros/generate_schema_name.sql); on Trino the Nessie branch
    isolates the build, so the model keeps its schema there and the directory is named apart."""
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid product name; refusing to build a path from it.")
    return settings.target_dir / ("wap_branch" if settings.warehouse == "trino" else "wap_audit") / name


def prepare_audit(settings: Settings, name: str, sql_path: Path) -> Path:
    """The audit build's target directory, emptied of a previous attempt's results; call it before
    anything else runs dbt on the project (it reads the portal's parse state).

    On DuckDB it starts from the portal's partial-parse state (same vars, profile and target), so
    the audit build parses only what changed instead of the whole project. Only when the product's
    SQL differs from what that state recorded, though: dbt re-parses a model only when its file
    changed, and a model it does not re-parse keeps the schema it had, gold, so an unchanged
    resubmission would be built straight into gold. Those get a full parse instead.
    """
    audit_dir = audit_target(settings, name)
    audit_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("run_results.json", PARTIAL_PARSE_FILE):  # never read a previous attempt's
        (audit_dir / stale).unlink(missing_ok=True)
    state = settings.target_dir / PARTIAL_PARSE_FILE
    if settings.warehouse == "duckdb" and state.exists() and _changed_since_parsed(settings, name, sql_path):
        shutil.copyfile(state, audit_dir / PARTIAL_PARSE_FILE)
    return audit_dir


def _changed_since_parsed(settings: Settings, name: str, sql_path: Path) -> bool:
    """Whether the model's SQL file differs from the one the portal's manifest was parsed from."""
    manifest_path = find_artifact(settings.target_dir, "manifest")
    if manifest_path is None:
        return False  # no manifest next to the state: trust neither
    node = next((n for n in load_manifest(manifest_path).models() if n.name == name), None)
    if node is None:
        return True  # a new model: dbt parses its new file
    # dbt keeps the file's stripped text as the node's raw code, and re-parses the file exactly
    # when that text changes (its checksum is of the same stripped text).
    return sql_path.read_text(encoding="utf-8").strip() != node.raw_code


def audit_on_duckdb(
    settings: Settings, name: str, materialization: str, audit_dir: Path, *, say: LineSink, stage: LineSink
) -> Audit:
    """Build `name` and its tests in the audit schema; copy it to gold if all passed.

    `audit_dir` comes from `prepare_audit`; the caller holds the project's dbt lock."""
    stage(f"Building {name} and its tests in the audit schema `{AUDIT_SCHEMA}` …")
    build = run_dbt(
        settings,
        ["build", "--select", name, "--log-path", str(audit_dir / "logs")],
        on_line=say,
        target_path=audit_dir,
        lock=False,
    )
    outcomes = node_outcomes(audit_dir, name)
    record: dict[str, Any] = {"engine": "duckdb", "audit_schema": AUDIT_SCHEMA, "published": False}
    if not _passed(build, outcomes, settings, stage):
        return Audit(build, outcomes, published=False, record={**record, "outcome": "failed"})
    stage(f"The model and all {len(outcomes) - 1} tests passed; publishing to `{settings.gold_schema}` …")
    try:
        row_count = _publish_duckdb(settings, name, materialization, audit_dir)
    except WarehouseError as exc:
        stage(f"Publishing failed: {exc}")
        return Audit(build, outcomes, published=False, error=str(exc), record={**record, "outcome": "error"})
    published = {**record, "published": True, "outcome": "published"}
    return Audit(build, outcomes, published=True, row_count=row_count, record=published)


def audit_on_nessie(
    settings: Settings, name: str, wap_id: str, audit_dir: Path, *, say: LineSink, stage: LineSink
) -> Audit:
    """Build `name` and its tests on a Nessie branch; merge the branch into main if all passed.

    `audit_dir` comes from `prepare_audit`; the caller holds the project's dbt lock. The record
    holds the branch, main's hash before, the branch's head, main's hash after and the outcome."""
    config = wap_config(settings)
    branch = wap.branch_for(wap_id)
    stage(
        f"Building {name} and its tests on the Nessie branch `{branch}` (cut from `{config.main_branch}`) …"
    )
    result = wap.write_audit_publish(
        settings,
        config,
        [name],
        run_id=wap_id,
        dbt_target=settings.dbt_target,
        target_dir=audit_dir,
        on_line=say,
        lock=False,
    )
    record = {"engine": "nessie", **result.as_record(), "published": result.merged}
    outcomes = node_outcomes(audit_dir, name)
    build = result.dbt or DbtResult(argv=[], returncode=-1, log=result.message, elapsed_s=result.elapsed_s)
    if result.outcome == wap.FAILED:
        _passed(build, outcomes, settings, stage)  # says which nodes failed
        return Audit(build, outcomes, published=False, record=record)
    if not result.merged:
        # Nessie or Trino failed around a build (conflict, unreachable): not the product's fault.
        stage(f"Publishing failed: {result.message}")
        return Audit(build, outcomes, published=False, error=result.message, record=record)
    stage(result.message)
    relation = Relation(settings.trino_catalog, settings.gold_schema, name)
    try:
        row_count: int | None = open_warehouse(settings).count(relation)
    except WarehouseError as exc:  # published all the same; the count is only informative
        stage(f"Published, but counting its rows failed: {exc}")
        row_count = None
    return Audit(build, outcomes, published=True, row_count=row_count, record=record)


def wap_config(settings: Settings) -> wap.WapConfig:
    """Nessie's URI and the main catalog's properties, from the file PORTAL_TRINO_CATALOG_PROPERTIES."""
    return wap.WapConfig.from_catalog_file(settings.trino_catalog_properties)


def node_outcomes(audit_dir: Path, name: str) -> list[NodeOutcome]:
    """Every node of the audit build, the model first, with test names from the audit manifest."""
    results_path = find_artifact(audit_dir, "run_results")
    if results_path is None:
        return []  # dbt stopped before running anything (a parse or compile error): see the log
    manifest_path = find_artifact(audit_dir, "manifest")
    manifest = load_manifest(manifest_path) if manifest_path else None
    outcomes = []
    for result in load_run_results(results_path).results:
        node = manifest.get(result.unique_id) if manifest else None
        test = node.test if node else None
        outcomes.append(
            NodeOutcome(
                unique_id=result.unique_id,
                resource_type=result.unique_id.split(".", 1)[0],
                name=test.name if test else (node.name if node else name),
                column=test.column_name if test else None,
                status=result.status,
                message=result.message,
                failures=result.failures,
            )
        )
    return sorted(outcomes, key=lambda o: (o.resource_type != "model", o.unique_id))


def drop_audit(settings: Settings, name: str) -> None:
    """Remove what a failed DuckDB audit build left in the audit schema (Nessie deletes its branch)."""
    if settings.warehouse != "duckdb" or not settings.duckdb_path.exists():
        return
    with _writable_warehouse(settings) as con:
        _drop_any(con, AUDIT_SCHEMA, name)


def _passed(build: DbtResult, outcomes: list[NodeOutcome], settings: Settings, stage: LineSink) -> bool:
    """The model built and every test passed; otherwise say how many nodes did not."""
    passed = (
        build.ok and any(o.unique_id.startswith("model.") for o in outcomes) and all(o.ok for o in outcomes)
    )
    if not passed:
        failed = [o for o in outcomes if not o.ok]
        stage(
            f"The audit build failed ({len(failed)} of {len(outcomes)} nodes did not pass); "
            f"`{settings.gold_schema}` is untouched."
        )
    return passed


# --- publishing on DuckDB ------------------------------------------------------------------


@contextmanager
def _writable_warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short writable connection. DuckDB refuses it while a reader holds the file (a preview,
    in this process or another), so it retries for a while; the caller holds the dbt lock."""
    deadline = time.monotonic() + PUBLISH_WAIT_S
    while True:
        try:
            con = duckdb.connect(str(settings.duckdb_path), config={"enable_external_access": False})
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if time.monotonic() > deadline:
                raise WarehouseUnavailable(
                    f"The warehouse {settings.duckdb_path} stayed busy (open in another process) for "
                    f"{PUBLISH_WAIT_S:g} s. Resubmit when previews or other tools have closed it. ({exc})"
                ) from exc
            time.sleep(0.2)
    try:
        yield con
    finally:
        con.close()


def _relation_sql(schema: str, name: str) -> str:
    return exp.table_(name, db=schema, quoted=True).sql(dialect="duckdb")


def _drop_any(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop a table or a view of that name (an edit may change the materialization)."""
    row = con.execute(
        "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    if row is not None:
        kind = "VIEW" if row[0] == "VIEW" else "TABLE"
        con.execute(f"DROP {kind} {_relation_sql(schema, name)}")


def _publish_duckdb(settings: Settings, name: str, materialization: str, audit_dir: Path) -> int:
    """Copy the audited relation to gold and drop it from audit, in one transaction; its row count.

    A table (or incremental) is copied; a view is created again in gold from dbt's compiled SQL,
    which reads its upstream relations by their full names.
    """
    gold, audit = _relation_sql(settings.gold_schema, name), _relation_sql(AUDIT_SCHEMA, name)
    view_sql = _compiled_sql(audit_dir, name) if materialization == "view" else None
    try:
        with _writable_warehouse(settings) as con:
            con.execute("BEGIN TRANSACTION")
            con.execute(
                f"CREATE SCHEMA IF NOT EXISTS {exp.to_identifier(settings.gold_schema, quoted=True).sql()}"
            )
            _drop_any(con, settings.gold_schema, name)
            if view_sql is not None:
                con.execute(f"CREATE VIEW {gold} AS {view_sql}")
            else:
                con.execute(f"CREATE TABLE {gold} AS SELECT * FROM {audit}")
            _drop_any(con, AUDIT_SCHEMA, name)
            result = con.execute(f"SELECT count(*) FROM {gold}").fetchone()
            con.execute("COMMIT")
    except duckdb.Error as exc:
        raise WarehouseError(f"DuckDB refused to publish {name}: {exc}") from exc
    assert result is not None
    return int(result[0])


def _compiled_sql(audit_dir: Path, name: str) -> str:
    manifest_path = find_artifact(audit_dir, "manifest")
    node_sql = None
    if manifest_path is not None:
        manifest = load_manifest(manifest_path)
        node = next((n for n in manifest.models() if n.name == name), None)
        node_sql = node.compiled_code if node else None
    if not node_sql:
        raise WarehouseError(f"dbt left no compiled SQL for {name} in {audit_dir}; resubmit to rebuild it.")
    return node_sql
