"""Write-audit-publish behind one interface: the `Publisher` each engine implements, and what
every engine shares (an audit's result, node outcomes).

Every publisher builds the product and its tests somewhere consumers do not read, and publishes
only when the model and every test passed:

- **DuckDB** (portal/creation/publish/duckdb.py): `dbt build` into the schema `audit`, then a
  copy to gold in one short writable transaction. DuckDB has no branches, so the audit schema is
  the staging area.
- **Trino + Nessie** (portal/creation/publish/nessie.py): `dbt build` on a Nessie branch cut from
  main, merged into main only if it passed. The merge is the publish: an Iceberg table is never
  copied, and a failure leaves main's commit and every snapshot as they were.

With review required (PORTAL_REVIEW), a build that passed is *held* instead: its data stays where it
was audited (the audit schema; the Nessie branch) until a reviewer approves (`publish_held`) or
rejects it (`drop_audit`); `held_relation` is where the review reads it meanwhile.

`publisher_for` (portal/creation/publish/registry.py) picks the configured engine's. Each audit
returns an `Audit`: dbt's result, every node's outcome, whether it was published, and the record
the run keeps under `details["wap"]`, read back as portal/runs.py's `PublishRecord` (shown in the
run view and the API's run).
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.creation.spec import NAME_RE
from portal.errors import Conflict
from portal.project.artifacts import find_artifact, load_manifest, load_run_results
from portal.project.dbt_runner import DbtResult, StopRequest
from portal.runs import PublishRecord
from portal.settings import Settings
from portal.warehouse import Relation

# Where a product is audited on DuckDB, and where a failed product's files stay pinned on every
# engine until it passes (so that a full `dbt build` does not put an untested product in gold).
AUDIT_SCHEMA = "audit"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
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
    held: bool = False  # it passed and waits for a reviewer where it was audited (review required)

    @property
    def publish(self) -> PublishRecord:
        """The record as the run view and the API read it back from the run."""
        read = PublishRecord.from_details({"wap": self.record})
        assert read is not None  # a dict always reads back
        return read


@dataclass(frozen=True)
class Published:
    """What publishing a held build did: its rows in gold, and the run record's new state."""

    row_count: int | None
    record: dict[str, Any]


class PublishConflict(Conflict):
    """Main changed, since the audit, what the held build changes: it cannot be published as it
    is (the proposal is stale). Nothing was published; resubmitting rebuilds it on main as it is."""


def wap_run_id(run_id: int) -> str:
    """The id of a run's Nessie branch (wap-r42-1a2b3c): the portal's run id, so the run view and
    Nessie's log agree, plus a random part, since another portal (or a fresh catalog database)
    may count its runs from 1 against the same Nessie."""
    return f"r{run_id}_{secrets.token_hex(3)}"


class Publisher(ABC):
    """Write-audit-publish on one engine: where a product's SQL may read from, where its audit
    build runs and keeps its state, and how it is published. The caller holds the project's dbt
    lock around `prepare_audit`, `audit` and `drop_audit`."""

    engine: str = ""  # the run record's `engine`: duckdb or nessie
    # The directory under the portal's dbt target that holds the audit builds, one per product.
    audit_dir_name: str = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def unsupported(self) -> str | None:
        """Why products cannot be published with the configuration as it is (and what to set),
        or None when they can."""

    @abstractmethod
    def catalogs(self) -> tuple[str, ...]:
        """The names of the warehouse catalog a product's SQL may use in three-part names."""

    @abstractmethod
    def pending_record(self, wap_id: str) -> dict[str, Any]:
        """The run's details["wap"] while it builds: where the audit happens."""

    @abstractmethod
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
        """Build `name` and its tests where consumers do not read; publish it if all passed, or
        with `hold` keep it there for a reviewer (`Audit.held`; record outcome `in_review`).

        `audit_dir` comes from `prepare_audit`; `wap_id` is the run's (`wap_run_id`). The build is
        stopped after PORTAL_BUILD_TIMEOUT_S or once `stop` is requested (a cancel): then nothing is
        published and nothing half-built is left where a retry would build."""

    @abstractmethod
    def publish_held(self, name: str, *, materialization: str, record: Mapping[str, Any]) -> Published:
        """Publish the held build of `name` (its run's details["wap"] is `record`): a reviewer
        approved it. PublishConflict when main changed what it changes meanwhile; the caller holds
        the project's dbt lock."""

    @abstractmethod
    def held_relation(self, name: str, record: Mapping[str, Any]) -> AbstractContextManager[Relation]:
        """Where the held build of `name` can be read while it is open (a review's data diff)."""

    @abstractmethod
    def drop_audit(self, name: str, record: Mapping[str, Any] | None = None) -> None:
        """Remove what a failed audit build of `name` left behind, or a held one (rejected,
        expired, superseded). `record` is its run's details["wap"]: it names a Nessie branch."""

    def published_relation(self, name: str) -> Relation:
        """Where consumers read `name` once published."""
        return Relation(self.catalogs()[0], self.settings.gold_schema, name)

    def audit_target(self, name: str) -> Path:
        """The audit build's dbt target directory, per product (see `audit_dir_name`)."""
        if not NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a valid product name; refusing to build a path from it.")
        return self.settings.target_dir / self.audit_dir_name / name

    def prepare_audit(self, name: str, sql_path: Path) -> Path:
        """The audit build's target directory, emptied of a previous attempt's results; call it before
        anything else runs dbt on the project (an engine may start from the portal's parse state)."""
        audit_dir = self.audit_target(name)
        audit_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("run_results.json", PARTIAL_PARSE_FILE):  # never read a previous attempt's
            (audit_dir / stale).unlink(missing_ok=True)
        return audit_dir

    def _passed(self, build: DbtResult, outcomes: list[NodeOutcome], stage: LineSink) -> bool:
        """The model built and every test passed; otherwise say how many nodes did not."""
        passed = (
            build.ok
            and any(o.unique_id.startswith("model.") for o in outcomes)
            and all(o.ok for o in outcomes)
        )
        if not passed:
            failed = [o for o in outcomes if not o.ok]
            stage(
                f"The audit build failed ({len(failed)} of {len(outcomes)} nodes did not pass); "
                f"`{self.settings.gold_schema}` is untouched."
            )
        return passed


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
