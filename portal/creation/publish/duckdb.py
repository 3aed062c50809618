"""Write-audit-publish on DuckDB: the product is built and tested in the audit schema, then copied
to gold in one short writable transaction.

`dbt build` runs into the schema `audit`: the audit build's target path `<target>/wap_audit/<name>`
tells dbt/macros/generate_schema_name.sql to put that one model there. DuckDB has no branches, so
the audit schema is the staging area. The audit target starts from the portal's own partial-parse
state, so dbt parses only the product's files, not the whole project.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from portal.creation.publish.base import (
    AUDIT_SCHEMA,
    PARTIAL_PARSE_FILE,
    Audit,
    LineSink,
    NodeOutcome,
    Published,
    Publisher,
    node_outcomes,
)
from portal.project.artifacts import find_artifact, load_manifest
from portal.project.dbt_runner import DbtResult, StopRequest, run_dbt
from portal.settings import Settings
from portal.warehouse import Relation, WarehouseError, WarehouseUnavailable, open_warehouse

# A writable DuckDB connection must wait for readers (previews) to close theirs; they are short.
PUBLISH_WAIT_S = 15.0


class DuckDBPublisher(Publisher):
    """The audit schema as the staging area, and a copy to gold as the publish."""

    engine = "duckdb"
    # Its path is what puts the model in the audit schema (dbt/macros/generate_schema_name.sql).
    audit_dir_name = "wap_audit"

    def unsupported(self) -> str | None:
        return None

    def catalogs(self) -> tuple[str, ...]:
        # DuckDB attaches the file under its stem.
        return (self.settings.duckdb_path.stem,)

    def pending_record(self, wap_id: str) -> dict[str, Any]:
        return {"engine": self.engine, "audit_schema": AUDIT_SCHEMA, "published": False}

    def prepare_audit(self, name: str, sql_path: Path) -> Path:
        """See `Publisher.prepare_audit`. It starts from the portal's partial-parse state (same vars,
        profile and target), so the audit build parses only what changed instead of the whole
        project. Only when the product's SQL differs from what that state recorded, though: dbt
        re-parses a model only when its file changed, and a model it does not re-parse keeps the
        schema it had, gold, so an unchanged resubmission would be built straight into gold. Those
        get a full parse instead.
        """
        audit_dir = super().prepare_audit(name, sql_path)
        state = self.settings.target_dir / PARTIAL_PARSE_FILE
        if state.exists() and _changed_since_parsed(self.settings, name, sql_path):
            shutil.copyfile(state, audit_dir / PARTIAL_PARSE_FILE)
        return audit_dir

    def audit(
        self,
        name: str,
        *,
        materialization: str,
        wap_id: str,
        audit_dir: Path,
        say: LineSink,
        stage: LineSink,
        stop: StopRequest | None = None,
        hold: bool = False,
    ) -> Audit:
        """Build `name` and its tests in the audit schema; copy it to gold if all passed (with
        `hold`, leave it in the audit schema for a reviewer).

        `audit_dir` comes from `prepare_audit`; the caller holds the project's dbt lock."""
        settings = self.settings
        stage(f"Building {name} and its tests in the audit schema `{AUDIT_SCHEMA}` …")
        build = run_dbt(
            settings,
            ["build", "--select", name, "--log-path", str(audit_dir / "logs")],
            on_line=say,
            target_path=audit_dir,
            lock=False,
            timeout_s=settings.build_timeout_s,
            timeout_setting="build_timeout_s",
            stop=stop,
        )
        outcomes = node_outcomes(audit_dir, name)
        record: dict[str, Any] = {"engine": self.engine, "audit_schema": AUDIT_SCHEMA, "published": False}
        if build.stopped:
            return self._stopped(name, build, outcomes, record, stage)
        if not self._passed(build, outcomes, stage):
            return Audit(build, outcomes, published=False, record={**record, "outcome": "failed"})
        if hold:
            stage(
                f"The model and all {len(outcomes) - 1} tests passed; it waits for a reviewer in "
                f"`{AUDIT_SCHEMA}`, and `{settings.gold_schema}` is untouched until it is approved."
            )
            held = {**record, "outcome": "in_review"}
            try:
                rows: int | None = open_warehouse(settings).count(self._audit_relation(name))
            except WarehouseError:  # only informative: the review counts again
                rows = None
            return Audit(build, outcomes, published=False, row_count=rows, record=held, held=True)
        stage(f"The model and all {len(outcomes) - 1} tests passed; publishing to `{settings.gold_schema}` …")
        try:
            row_count = _publish(settings, name, materialization, audit_dir)
        except WarehouseError as exc:
            stage(f"Publishing failed: {exc}")
            return Audit(
                build, outcomes, published=False, error=str(exc), record={**record, "outcome": "error"}
            )
        published = {**record, "published": True, "outcome": "published"}
        return Audit(build, outcomes, published=True, row_count=row_count, record=published)

    def publish_held(self, name: str, *, materialization: str, record: Mapping[str, Any]) -> Published:
        """Copy the held build from the audit schema to gold (see `_publish`). DuckDB has no
        branches to conflict: gold is replaced by what the reviewer saw."""
        row_count = _publish(self.settings, name, materialization, self.audit_target(name))
        return Published(row_count, {**record, "published": True, "outcome": "published"})

    @contextmanager
    def held_relation(self, name: str, record: Mapping[str, Any]) -> Iterator[Relation]:
        yield self._audit_relation(name)

    def _audit_relation(self, name: str) -> Relation:
        return Relation(self.catalogs()[0], AUDIT_SCHEMA, name)

    def _stopped(
        self,
        name: str,
        build: DbtResult,
        outcomes: list[NodeOutcome],
        record: dict[str, Any],
        stage: LineSink,
    ) -> Audit:
        """The build was stopped (timeout or cancel): nothing is published, and what it left in the
        audit schema goes, since it is untested and may be as costly to read as it was to build."""
        stage(f"{build.message} `{self.settings.gold_schema}` is untouched.")
        try:
            self.drop_audit(name)
        except (WarehouseError, duckdb.Error) as exc:  # a retry replaces it all the same
            stage(f"Could not remove what the stopped build left in `{AUDIT_SCHEMA}`: {exc}")
        stopped = {"outcome": "failed", "stopped": build.stopped, "message": build.message}
        return Audit(build, outcomes, published=False, record={**record, **stopped})

    def drop_audit(self, name: str, record: Mapping[str, Any] | None = None) -> None:
        """Remove what a failed, stopped or interrupted audit build left in the audit schema: the
        relation, and the intermediate ones dbt renames into place (a build stopped in between
        leaves them). The audit schema is the same for every run, so `record` adds nothing."""
        if not self.settings.duckdb_path.exists():
            return
        with _writable_warehouse(self.settings) as con:
            for relation in (name, f"{name}__dbt_tmp", f"{name}__dbt_backup"):
                _drop_any(con, AUDIT_SCHEMA, relation)


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


# --- publishing ----------------------------------------------------------------------------


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


def _publish(settings: Settings, name: str, materialization: str, audit_dir: Path) -> int:
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
