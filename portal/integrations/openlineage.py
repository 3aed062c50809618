"""OpenLineage run events for every build the portal runs (creation audits, publishes, refreshes).

portal/runs.py is the one hook: when a run starts it hands over a START, when it ends its COMPLETE,
FAIL or ABORT (cancelled or interrupted), with the run's facts read from the catalog database
(`RunFacts`). This module turns those facts into an event, using what the portal already knows:

- the job: PORTAL_OPENLINEAGE_NAMESPACE, named `<dbt project>.<model>` (`asgard.dp_customer_360`);
- the run id: a UUID derived from the portal's run id and start (the same for START and its end),
  the portal's own run id in the `asgardPortalRun` facet;
- the datasets as the warehouse names them, as OpenLineage's dbt integration names them
  (`duckdb://<file>` with `database.schema.table`; `trino://host:port` with `catalog.schema.table`),
  the output being the product's table and the inputs the tables its SQL reads;
- facets: schema (catalog.json's types, else the YAML's), columnLineage (portal/lineage/columns.py),
  dataQualityAssertions (the run's dbt tests of the product), outputStatistics (rows), and for
  write-audit-publish on Nessie the branch and commit hashes (`nessieWriteAuditPublish`).

openlineage-python provides the event model, its JSON and the transports (http, file, console).
Sending never touches the build: events wait in a bounded queue drained by one daemon thread, each
send is bounded by PORTAL_OPENLINEAGE_TIMEOUT_S, and a failure is a warning in the run's log and
the portal's, never an exception. A process that exits waits at most one timeout for what is left.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.generated.base import JobFacet, RunFacet
from openlineage.client.transport import Transport
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_static_uuid

from portal.lineage.columns import EXTERNAL
from portal.project.artifacts import ArtifactError
from portal.settings import SettingError, Settings, env_of

if TYPE_CHECKING:
    from portal.project.artifacts import Manifest, Node
    from portal.service import PortalService

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/asgard-data/portal/tree/main/portal/integrations/openlineage.py"
# The portal's own facets are described in this module's sibling JSON schema.
FACETS_SCHEMA = "https://github.com/asgard-data/portal/tree/main/portal/integrations/openlineage_facets.json"
QUEUE_SIZE = 200  # events of about as many builds; a backend that keeps up never sees more than a few
DEFAULT_ENDPOINT = "api/v1/lineage"  # what the OpenLineage client posts to when OPENLINEAGE_ENDPOINT is unset
_OK_TESTS = frozenset({"pass", "success"})  # a `warn` test found issues, though it blocked nothing

Note = Callable[[str], None]  # appends a line to the run's log


# --- what a run did, as runs.py reads it ---------------------------------------------------


@dataclass(frozen=True)
class NessieCommits:
    """Where a write-audit-publish run on Trino was built and what became of main."""

    branch: str | None
    catalog: str | None
    outcome: str
    main_hash_before: str | None
    branch_hash: str | None
    main_hash_after: str | None


@dataclass(frozen=True)
class RunFacts:
    """One portal run as its event needs it (runs.py fills it from the run's row)."""

    run_id: int
    started_as: int  # the id its START named (a refresh's row may be merged into dbt's own)
    started_at: datetime
    kind: str  # creation or refresh
    product: str | None
    selector: str | None
    triggered_by: str
    status: str
    event_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    stopped: str | None = None  # dbt's TIMEOUT or CANCELLED
    interrupted: str | None = None  # ended by recovery: its process was gone
    message: str | None = None
    nessie: NessieCommits | None = None
    tests: tuple[tuple[str, str], ...] = ()  # (unique id, status) of the run's tests
    row_count: int | None = None  # measured by this run (a creation's audit)


def event_type(facts: RunFacts) -> RunState:
    """COMPLETE for a run that built and tested everything; ABORT for one cancelled or
    interrupted; FAIL otherwise (a failing test, a timeout, a refused publish)."""
    if facts.status == "success" and not facts.stopped:
        return RunState.COMPLETE
    if facts.interrupted or facts.stopped == "cancelled":
        return RunState.ABORT
    return RunState.FAIL


def run_uuid(facts: RunFacts) -> str:
    """The OpenLineage run id: the same UUID for a run's START and its end, derived from the portal
    run id and its start (a new catalog database's run 1 is another run)."""
    started = facts.started_at if facts.started_at.tzinfo else facts.started_at.replace(tzinfo=UTC)
    return str(generate_static_uuid(started, f"asgard-portal-run:{facts.started_as}".encode()))


# --- the portal's own facets -----------------------------------------------------------------


@attr.define
class PortalRunFacet(RunFacet):
    """The portal run behind the event: its id in the run trail (/api/v1/runs/{runId})."""

    runId: int  # OpenLineage facets are camelCase JSON
    kind: str
    triggeredBy: str
    selector: str | None = attr.field(default=None)
    status: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACETS_SCHEMA + "#/$defs/PortalRunFacet"


@attr.define
class NessieRunFacet(RunFacet):
    """Write-audit-publish on Nessie: the branch built on and main's commit before and after."""

    branch: str | None
    outcome: str
    mainHashBefore: str | None = attr.field(default=None)
    branchHash: str | None = attr.field(default=None)
    mainHashAfter: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACETS_SCHEMA + "#/$defs/NessieRunFacet"


# --- building an event ---------------------------------------------------------------------


def _relation_name(node: Node, catalog: str | None = None) -> str:
    parts = [catalog or node.database, node.schema, node.alias or node.name]
    return ".".join(p for p in parts if p)


def dataset_namespace(settings: Settings) -> str:
    """The warehouse as OpenLineage's naming (and its dbt integration) names it."""
    if settings.embedded:
        return f"duckdb://{settings.duckdb_path.resolve()}"
    return f"trino://{settings.trino_host}:{settings.trino_port}"


def _schema_facet(service: PortalService, node: Node) -> schema_dataset.SchemaDatasetFacet:
    catalog = service.artifacts().catalog
    table = catalog.get(node.unique_id) if catalog is not None else None
    fields: list[schema_dataset.SchemaDatasetFacetFields] = []
    if table is not None and table.columns:
        by_index = sorted(table.columns.values(), key=lambda c: c.index)
        for column in by_index:
            declared = node.columns.get(column.name)
            description = declared.description if declared is not None else None
            fields.append(
                schema_dataset.SchemaDatasetFacetFields(column.name, column.type, description or None)
            )
    else:
        for yml in node.columns.values():
            fields.append(
                schema_dataset.SchemaDatasetFacetFields(yml.name, yml.data_type, yml.description or None)
            )
    return schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)


def _column_lineage(
    service: PortalService, node: Node, columns: list[str], namespace: str, manifest: Manifest
) -> column_lineage_dataset.ColumnLineageDatasetFacet | None:
    """Each output column's direct upstream columns, as portal/lineage/columns.py traces them."""
    fields: dict[str, column_lineage_dataset.Fields] = {}
    for column in columns:
        try:
            lineage = service.column_lineage(node.unique_id, column)
        except Exception:  # lineage is a courtesy to the backend; the event goes without it
            log.debug("no column lineage for %s.%s", node.name, column, exc_info=True)
            continue
        inputs = []
        for target, upstream in lineage.edges:
            if target != lineage.target:
                continue
            if upstream.unique_id.startswith(EXTERNAL):
                name = upstream.unique_id.removeprefix(EXTERNAL)
            else:
                parent = manifest.get(upstream.unique_id)
                if parent is None:
                    continue
                name = _relation_name(parent)
            inputs.append(column_lineage_dataset.InputField(namespace, name, upstream.column))
        if inputs:
            fields[column] = column_lineage_dataset.Fields(inputFields=inputs)
    if not fields:
        return None
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def _assertions(
    facts: RunFacts, node: Node, manifest: Manifest
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet | None:
    found = []
    own = {test.unique_id for test in manifest.tests_of(node.unique_id)}  # not the upstream models' tests
    for unique_id, status in facts.tests:
        if unique_id not in own:
            continue
        test = manifest.get(unique_id)
        info = test.test if test is not None else None
        found.append(
            data_quality_assertions_dataset.Assertion(
                assertion=info.name if info is not None else unique_id.split(".")[-2],
                success=status in _OK_TESTS,
                column=info.column_name if info is not None else None,
                severity=str((test.config if test else {}).get("severity") or "error").lower(),
            )
        )
    if not found:
        return None
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=found, producer=PRODUCER
    )


def _row_count(service: PortalService, facts: RunFacts, node: Node) -> int | None:
    if facts.row_count is not None:
        return facts.row_count
    if facts.kind != "refresh" or facts.status != "success":
        return None
    try:
        warehouse = service.warehouse()
        try:
            return warehouse.count(service.relation(node))
        finally:
            warehouse.close()
    except Exception:  # a count the warehouse cannot give now is left out, not guessed
        log.debug("no row count for %s", node.name, exc_info=True)
        return None


def _product_node(service: PortalService, product: str | None) -> Node | None:
    if not product:
        return None
    try:
        return service.resolve(product)
    except Exception:  # not (yet) in the manifest: the event names the job only
        return None


def build_event(service: PortalService, facts: RunFacts, state: RunState) -> RunEvent:
    """The OpenLineage event of `facts` in `state` (START, or the run's end)."""
    settings = service.settings
    try:
        manifest: Manifest | None = service.artifacts().manifest
    except ArtifactError:
        manifest = None
    project = (manifest.project_name if manifest is not None else None) or "dbt"
    node = _product_node(service, facts.product) if manifest is not None else None
    name = facts.product or (facts.selector or "build").lstrip("+")
    namespace = dataset_namespace(settings)
    ended = state != RunState.START

    inputs: list[InputDataset] = []
    outputs: list[OutputDataset] = []
    if node is not None and manifest is not None:
        for parent_id in node.depends_on:
            parent = manifest.get(parent_id)
            if parent is None or parent.resource_type not in {"model", "source", "seed", "snapshot"}:
                continue
            inputs.append(
                InputDataset(
                    namespace, _relation_name(parent), facets={"schema": _schema_facet(service, parent)}
                )
            )
        # A Nessie audit that was not merged lives in the run's branch catalog, not in main's.
        held = facts.nessie is not None and facts.nessie.outcome != "published"
        catalog = facts.nessie.catalog if held and facts.nessie is not None else None
        schema = _schema_facet(service, node)
        facets: dict[str, Any] = {"schema": schema}
        output_facets: dict[str, Any] = {}
        if ended:
            columns = [f.name for f in schema.fields or []]
            lineage = _column_lineage(service, node, columns, namespace, manifest)
            if lineage is not None:
                facets["columnLineage"] = lineage
            assertions = _assertions(facts, node, manifest)
            if assertions is not None:
                # The spec files it under input facets (a test reads a table); on the table a build
                # writes, it goes with the dataset's own facets, as Marquez and DataHub read them.
                facets["dataQualityAssertions"] = assertions
            rows = _row_count(service, facts, node)
            if rows is not None:
                output_facets["outputStatistics"] = (
                    output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=rows, producer=PRODUCER
                    )
                )
        outputs.append(
            OutputDataset(namespace, _relation_name(node, catalog), facets=facets, outputFacets=output_facets)
        )

    run_facets: dict[str, RunFacet] = {
        "asgardPortalRun": PortalRunFacet(
            runId=facts.run_id,
            kind=facts.kind,
            triggeredBy=facts.triggered_by,
            selector=facts.selector,
            status=facts.status if ended else "running",
            producer=PRODUCER,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=manifest.dbt_version if manifest is not None else "unknown",
            name="dbt",
            openlineageAdapterVersion=_library_version(),
            producer=PRODUCER,
        ),
    }
    if facts.nessie is not None:
        run_facets["nessieWriteAuditPublish"] = NessieRunFacet(
            branch=facts.nessie.branch,
            outcome=facts.nessie.outcome if ended else "running",
            mainHashBefore=facts.nessie.main_hash_before,
            branchHash=facts.nessie.branch_hash if ended else None,
            mainHashAfter=facts.nessie.main_hash_after if ended else None,
            producer=PRODUCER,
        )
    if state in (RunState.FAIL, RunState.ABORT):
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=facts.interrupted or facts.message or f"the run ended {facts.status}",
            programmingLanguage="SQL",
            producer=PRODUCER,
        )
    job_facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="DBT", jobType="MODEL", producer=PRODUCER
        )
    }
    return RunEvent(
        eventType=state,
        eventTime=(facts.started_at if not ended else facts.event_time).astimezone(UTC).isoformat(),
        run=Run(runId=run_uuid(facts), facets=run_facets),
        job=Job(namespace=settings.openlineage_namespace, name=f"{project}.{name}", facets=job_facets),
        inputs=inputs,
        outputs=outputs,
        producer=PRODUCER,
    )


def _library_version() -> str:
    from importlib.metadata import version

    return version("openlineage-python")


# --- transports ------------------------------------------------------------------------------


def _client_configured(environ: Mapping[str, str]) -> bool:
    """Whether the OpenLineage client's own configuration names a transport (beyond OPENLINEAGE_URL)."""
    return bool(environ.get("OPENLINEAGE_CONFIG")) or any(
        key.startswith("OPENLINEAGE__TRANSPORT") for key in environ
    )


def transport_for(settings: Settings, environ: Mapping[str, str] | None = None) -> Transport | None:
    """The transport the settings (and the OpenLineage client's own variables) choose; None for off.
    SettingError when `http` has no URL to send to."""
    env = os.environ if environ is None else environ
    kind = settings.openlineage_transport
    if kind == "off" or (kind == "auto" and env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"):
        return None
    if kind == "auto":
        if env.get("OPENLINEAGE_URL"):
            kind = "http"
        elif _client_configured(env):
            # OPENLINEAGE_CONFIG or OPENLINEAGE__TRANSPORT__*: the client resolves it as it always does.
            return OpenLineageClient().transport
        else:
            return None
    if kind == "console":
        return ConsoleTransport(ConsoleConfig())
    if kind == "file":
        path = settings.openlineage_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    url = settings.openlineage_url or env.get("OPENLINEAGE_URL", "")
    if not url:
        raise SettingError(
            f"{env_of('openlineage_transport')}=http needs the lineage backend's URL: set "
            f"{env_of('openlineage_url')} (or OPENLINEAGE_URL), e.g. http://marquez:5000."
        )
    api_key = settings.openlineage_api_key or env.get("OPENLINEAGE_API_KEY", "")
    config = {
        "url": url,
        "endpoint": env.get("OPENLINEAGE_ENDPOINT") or DEFAULT_ENDPOINT,
        "timeout": settings.openlineage_timeout_s,
        # No retries: a backend that is down gets the next run's events; this run's wait in no queue.
        "retry": {"total": 0, "connect": 0, "read": 0, "status": 0, "other": 0},
        **({"auth": {"type": "api_key", "apiKey": api_key}} if api_key else {}),
    }
    return HttpTransport(HttpConfig.from_dict(config))


def describe(transport: Transport) -> str:
    if isinstance(transport, HttpTransport):
        return f"{transport.url.rstrip('/')}/{transport.endpoint.lstrip('/')}"
    if isinstance(transport, FileTransport):
        return transport.config.log_file_path
    return transport.kind or "console"


# --- sending in the background ---------------------------------------------------------------


@dataclass
class _Item:
    service: PortalService
    facts: RunFacts
    state: RunState
    note: Note


class Emitter:
    """The bounded queue of events and the one daemon thread that sends them."""

    _exit_registered: ClassVar[bool] = False

    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._transports: dict[tuple[Any, ...], Transport | None] = {}
        self._warnings: dict[int, list[str]] = {}  # a run's warnings, written to its log at its end
        self.last_timeout_s = 0.0

    def transport(self, settings: Settings) -> Transport | None:
        key = (
            settings.openlineage_transport,
            settings.openlineage_url,
            settings.openlineage_api_key,
            settings.openlineage_file,
            settings.openlineage_timeout_s,
            *(
                os.environ.get(k, "")
                for k in ("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY", "OPENLINEAGE_DISABLED")
            ),
        )
        with self._lock:
            if key not in self._transports:
                self._transports[key] = transport_for(settings)
            return self._transports[key]

    def submit(self, service: PortalService, facts: RunFacts, state: RunState, note: Note) -> None:
        """Queue an event; never blocks and never raises (a full queue drops it, with a warning)."""
        try:
            if self.transport(service.settings) is None:
                return
        except Exception as exc:  # a misconfigured backend is reported, never fatal
            self._warn(facts, state, note, f"not sent: {exc}")
            return
        self.last_timeout_s = service.settings.openlineage_timeout_s
        self._start()
        try:
            self._queue.put_nowait(_Item(service, facts, state, note))
        except queue.Full:
            self._warn(facts, state, note, "not sent: too many events are waiting for the lineage backend")

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued event was sent or given up, at most `timeout_s`; True if done."""
        deadline = time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="openlineage", daemon=True)
                self._thread.start()
            if not Emitter._exit_registered:
                # A CLI run (refresh --due) exits right after its builds: give their events one timeout.
                atexit.register(lambda: self.drain(self.last_timeout_s))
                Emitter._exit_registered = True

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._send(item)
            except Exception:  # the sender must outlive any one event
                log.warning(
                    "OpenLineage: could not handle an event of run %s", item.facts.run_id, exc_info=True
                )
            finally:
                self._queue.task_done()

    def _send(self, item: _Item) -> None:
        transport = self.transport(item.service.settings)
        if transport is None:
            return
        try:
            event = build_event(item.service, item.facts, item.state)
            transport.emit(event)
        except Exception as exc:  # a backend down, slow or refusing: a warning, no more
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._warn(
                item.facts, item.state, item.note, f"could not be sent to {describe(transport)}: {reason}"
            )
        if item.state != RunState.START:
            self._flush_warnings(item.facts.started_as, item.note)

    def _warn(self, facts: RunFacts, state: RunState, note: Note, what: str) -> None:
        line = f"Warning: the OpenLineage {state.value} event of run {facts.run_id} {what}"
        log.warning("%s", line)
        with self._lock:
            self._warnings.setdefault(facts.started_as, []).append(line)
        if state != RunState.START and threading.current_thread() is not self._thread:
            self._flush_warnings(facts.started_as, note)  # dropped before the sender saw it

    def _flush_warnings(self, run_id: int, note: Note) -> None:
        # A run's log is written whole when it ends, so its warnings wait for the end to be appended.
        with self._lock:
            lines = self._warnings.pop(run_id, [])
        for line in lines:
            try:
                note(line)
            except Exception:  # the portal's log has it already
                log.debug("could not add an OpenLineage warning to run %s's log", run_id, exc_info=True)


_emitter = Emitter()


def enabled(settings: Settings) -> bool:
    """Whether builds send events (a transport that cannot be set up counts: its warning is due)."""
    try:
        return _emitter.transport(settings) is not None
    except Exception:  # submit reports it in the run's log
        return True


def run_started(service: PortalService, facts: RunFacts, note: Note) -> None:
    """A run started: its START event goes to the lineage backend (in the background)."""
    _emitter.submit(service, facts, RunState.START, note)


def run_ended(service: PortalService, facts: RunFacts, note: Note) -> None:
    """A run ended: its COMPLETE, FAIL or ABORT event goes to the lineage backend (in the background)."""
    _emitter.submit(service, facts, event_type(facts), note)


def drain(timeout_s: float) -> bool:
    """Wait (at most `timeout_s`) until the queued events are sent or given up; True if they are."""
    return _emitter.drain(timeout_s)


__all__ = [
    "NessieCommits",
    "RunFacts",
    "build_event",
    "dataset_namespace",
    "drain",
    "enabled",
    "event_type",
    "run_ended",
    "run_started",
    "run_uuid",
    "transport_for",
]
