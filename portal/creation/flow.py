"""Self-service creation: a form's ProductSpec becomes a validated, generated, tested and published
data product, and owners edit, deprecate or discard it later (deprecate, discard and the rest of a
product's life around its builds: portal/creation/lifecycle.py).

The flow (docs/ARCHITECTURE.md, "Data flow"), the same for the Streamlit page, the API and the CLI:

1. **check**: `validate_spec` and `validate_sql` (the allowlist guard, tables rewritten into
   `ref()`/`source()`), then a dry run of the rewritten query on the read-only warehouse for its
   columns, types and first rows, and the scaffold's checks on those columns. Nothing is written.
2. **claim** the name: a `data_products` row in status `building`. The database's unique name
   makes concurrent submissions of one name race on a single INSERT, so exactly one wins and the
   others are refused at once instead of queueing behind a build they would then fail.
3. under the project's dbt lock (one dbt invocation per project; a second submission waits and is
   told so): check again against the warehouse and the manifest as they are now, write the files
   atomically (scaffold), then **write-audit-publish** (portal/creation/publish/, one publisher per
   engine):
   - *audit*: `dbt build --select <name>` where consumers do not read (DuckDB: the audit schema;
     Trino: a Nessie branch cut from main), with a separate target path, so the portal's
     manifest and run_results are untouched;
   - *publish*, only when the model and every test passed (DuckDB: audit -> gold in one short
     writable transaction; Trino: merge the branch into main), then `dbt parse` so the manifest
     (catalog, lineage) knows the model. The run records where it was audited and, on Nessie,
     the branch, the commit hashes and the outcome.
   A failure leaves gold (main) as it was, the files in place (fix and resubmit through `edit`, or
   `discard`) and the product `failed`: parsed into the manifest all the same, so the catalog
   shows it with its failing tests, and its run and log are recorded in the catalog database.
   A failed *edit* of a published product puts the previous files back instead.

Refusals say what was wrong and how to fix it, and leave nothing written. This module imports no
web framework (DESIGN principle 1).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from catalog_db.models import DataProduct, Run
from portal.audit import add_event
from portal.auth.access import authorize, role_of
from portal.auth.identity import Identity
from portal.creation import commits, held
from portal.creation.dry_run import dry_run, dry_run_problem
from portal.creation.lifecycle import (
    Claim,
    Refused,
    claim_name,
    current_files,
    edit_changes,
    editable,
    model_of,
    models_dir,
    pin_to_audit,
    refuse_queued,
    release,
    spec_of,
)
from portal.creation.publish.base import AUDIT_SCHEMA, Audit, NodeOutcome, wap_run_id
from portal.creation.publish.registry import publisher_for
from portal.creation.scaffold import (
    FAILED_NOTE,
    IN_REVIEW_NOTE,
    GeneratedFiles,
    ProductExistsError,
    ScaffoldError,
    quarantined,
    render_product,
    write_product,
)
from portal.creation.spec import BUILTIN_TYPES, TYPE_RE, Problem, ProductSpec, validate_spec
from portal.creation.sqlguard import GuardResult, KnownRelations, validate_sql
from portal.errors import PortalError
from portal.observability.history import profile_published
from portal.project.artifacts import Artifacts, find_artifact, load_manifest, load_run_results
from portal.project.compiled import carry_compiled, compiled_of
from portal.project.dbt_runner import DbtBusy, DbtResult, cancellable, project_lock, run_dbt
from portal.project.repository import ProjectRepository
from portal.project.sync import run_status, sync
from portal.runs import (
    PublishRecord,
    announce_end,
    begin_queued,
    end_interrupted,
    forget_queued,
    start_run,
)
from portal.service import PortalService
from portal.settings import Settings
from portal.warehouse import WarehouseError, WarehouseUnavailable

# The flow's own progress lines start with this; everything else on `on_line` is dbt's log.
STAGE = "==> "
WAITING = STAGE + "Waiting for another build on this project to finish (queued)…"
RESTORE = "restore"  # a run's details: the published files an interrupted edit puts back
QUEUED = "queued"  # a run's details: a creation's run waiting for the build lock (nothing written)
# What an edit may start from: published, failed, or a proposal waiting for (or refused in) review.
EDITABLE = ("published", "failed", "in_review", "rejected")

LineSink = Callable[[str], None]


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """What `check` found: problems (empty when the spec can be created) and the dry run."""

    spec: ProductSpec
    problems: list[Problem]
    upstream: list[str] = field(default_factory=list)  # unique ids the query reads
    columns: list[tuple[str, str]] | None = None  # (name, warehouse type), from the dry run
    sample: pd.DataFrame | None = None  # the first rows
    guard: GuardResult | None = None
    files: GeneratedFiles | None = None  # what would be written

    @property
    def ok(self) -> bool:
        return not self.problems and self.files is not None


@dataclass(frozen=True)
class CreationResult:
    """The outcome of `create` or `edit`.

    status: `refused` (nothing written; see problems), `published`, or `failed` (files written,
    gold untouched; see outcomes and log), or `restored` (a failed edit of a published product:
    its previous files are back and it stays published), or `unchanged` (an edit that changes
    nothing of a published product: nothing was built), or `in_review` (built and tested, held
    for a reviewer: PORTAL_REVIEW is required; see `proposal_id`).
    """

    name: str
    status: str
    problems: list[Problem] = field(default_factory=list)
    validation: Validation | None = None
    outcomes: list[NodeOutcome] = field(default_factory=list)
    log: str = ""
    run_id: int | None = None
    row_count: int | None = None
    files: tuple[Path, ...] = ()
    elapsed_s: float = 0.0
    publish: PublishRecord | None = None  # where it was audited: schema or Nessie branch
    proposal_id: int | None = None  # the change's proposal (its git commit), when one was made

    @property
    def ok(self) -> bool:
        return self.status == "published"

    @property
    def failed_nodes(self) -> list[NodeOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


# --- 1. check ------------------------------------------------------------------------------


def product_types(service: PortalService) -> tuple[str, ...]:
    """The built-in types, those configured (PORTAL_PRODUCT_TYPES), and every type the
    project's products already use in `meta.data_product_type`."""
    found = set(service.settings.product_types) | {
        str(node.meta.get("data_product_type"))
        for node in service.artifacts().manifest.models()
        if node.meta.get("data_product_type")
    }
    with service.sessions() as session:
        found |= set(session.scalars(sa.select(DataProduct.data_product_type).distinct()))
    extra = sorted(t for t in found if TYPE_RE.match(t) and t not in BUILTIN_TYPES)
    return (*BUILTIN_TYPES, *extra)


def check(
    service: PortalService, spec: ProductSpec, identity: Identity, *, editing: str | None = None
) -> Validation:
    """Validate `spec` and dry-run its SQL on the warehouse; writes nothing.

    `editing` names the product being edited: its own name is then not "taken", and its SQL may
    not read the product itself.
    """
    problems, guard = _static_problems(service, spec, editing=editing)
    if guard is None or not guard.ok:
        return Validation(spec, problems, guard=guard)
    assert guard.normalized_sql is not None  # ok guards always carry it
    try:
        warehouse = service.warehouse(identity)
        with warehouse.session():
            columns, sample = dry_run(warehouse, guard.normalized_sql)
    except WarehouseUnavailable as exc:
        problems.append(Problem("warehouse", f"The query could not be tried: {exc}"))
        return Validation(spec, problems, upstream=list(guard.upstream), guard=guard)
    except WarehouseError as exc:
        problems.append(dry_run_problem(exc, spec.sql))
        return Validation(spec, problems, upstream=list(guard.upstream), guard=guard)
    files = None
    try:
        files = render_product(
            spec, guard, columns, created_by=identity.user, extra_types=product_types(service)
        )
    except ScaffoldError as exc:
        problems += exc.problems
    return Validation(
        spec,
        list(dict.fromkeys(problems)),
        upstream=list(guard.upstream),
        columns=columns,
        sample=sample,
        guard=guard,
        files=files if not problems else None,
    )


def owner_choices(identity: Identity) -> tuple[str, ...] | None:
    """The owners `identity` may give a product to; None when any will do. Teams are owners: a
    signed-in user gives a product to one of their own teams (an admin to any). Who else could
    change it afterwards is decided by its owner (portal/auth/access.py)."""
    return identity.groups if identity.signed_in and role_of(identity) != "admin" else None


def owner_problems(identity: Identity, spec: ProductSpec) -> list[Problem]:
    """The spec's owner, when it is not one of `owner_choices`."""
    choices = owner_choices(identity)
    if choices is None or spec.owner in choices:
        return []
    teams = ", ".join(f"`{team}`" for team in choices) or "none"
    return [
        Problem(
            "owner",
            f"The owner must be one of your teams ({teams}), since the owning team's members are who may "
            f"change the product; `{spec.owner}` is not one. Choose one of them, or ask an admin.",
        )
    ]


def _static_problems(
    service: PortalService, spec: ProductSpec, *, editing: str | None
) -> tuple[list[Problem], GuardResult | None]:
    """The checks that need no warehouse: every field, then the SQL guard.

    The guard runs only when the SQL passed the field checks, which it would otherwise repeat.
    """
    manifest = service.artifacts().manifest
    taken = {node.name for node in manifest.models()}
    with service.sessions() as session:
        taken |= set(session.scalars(sa.select(DataProduct.name).where(DataProduct.status != "removed")))
    taken.discard(editing or "")
    problems = validate_spec(spec, extra_types=product_types(service), existing_names=taken)
    if any(problem.field == "sql" for problem in problems):
        return problems, None
    guard = validate_sql(
        spec.sql, dialect=service.settings.warehouse, known=known_relations(service, editing=editing)
    )
    return list(dict.fromkeys(problems + guard.problems)), guard


def known_relations(service: PortalService, *, editing: str | None = None) -> KnownRelations:
    """What a product's SQL may read: the project's models, seeds and sources, less the product
    being edited (no product reads itself) and the portal products not published yet. A SQL
    workspace query may read the same, so it can be promoted to a product as it is."""
    manifest = service.artifacts().manifest
    known = KnownRelations.from_manifest(manifest, catalogs=publisher_for(service.settings).catalogs())
    if editing:
        own = model_of(manifest, editing)
        known = known.excluding(own) if own else known
    return known.withholding(_unpublished_products(service, editing))


def _unpublished_products(service: PortalService, editing: str | None) -> dict[str, str]:
    """Portal products no other product may read, each with the reason: never published, their
    data is in the audit schema (or on a branch) and their files may fail or be discarded."""
    with service.sessions() as session:
        rows = session.execute(
            sa.select(DataProduct.name, DataProduct.status).where(
                DataProduct.status.in_(("draft", "building", "failed")), DataProduct.name != (editing or "")
            )
        ).tuples()
        return {
            name: f"`{name}` is {status}: it has never been published, so no product may read it yet. Read "
            "the models it reads instead, or wait until it is published."
            for name, status in rows
        }


# --- 2. create and edit --------------------------------------------------------------------


def create(
    service: PortalService,
    spec: ProductSpec,
    identity: Identity,
    on_line: LineSink | None = None,
    wait: bool = True,
) -> CreationResult:
    """Create, build, audit and publish a new product; see the module docstring.

    `on_line` receives progress (lines starting with STAGE, and WAITING when queued) and dbt's
    log. With `wait=False` a submission that would have to queue is refused instead.
    """
    authorize(identity, "create")  # PermissionDenied: the core decides, whichever face asks
    flow = _Flow(service, spec, identity, on_line)
    refusal = _unsupported(service.settings) or flow.open_repository()
    if refusal:
        return flow.refused([refusal])
    problems, _ = _static_problems(service, spec, editing=None)
    problems += owner_problems(identity, spec)
    if problems:
        return flow.refused(problems)
    claim = claim_name(service, spec, identity)
    if isinstance(claim, Problem):
        return flow.refused([claim])
    try:
        # From the claim on, a run holds a lease on the submission: should this process die while
        # it queues, recovery finds the run and frees the name (creation/recovery.py).
        flow.queue_run(claim.row_id)
        with flow.locked(wait):
            validation = flow.recheck()
            if not validation.ok:
                if flow.queued:  # nobody heard this refusal: keep it where the submitter looks
                    assert flow.run_id is not None
                    refuse_queued(service, claim, identity, validation.problems, flow.run_id)
                else:
                    flow.abandon(claim)
                return flow.refused(validation.problems, validation)
            assert validation.files is not None
            try:
                paths = write_product(models_dir(service.settings), validation.files)
            except ProductExistsError as exc:
                flow.abandon(claim)
                return flow.refused([Problem("name", str(exc))], validation)
            built = flow.build(claim.row_id, validation, paths, action="product.created")
        return flow.profiled(built)
    except DbtBusy as exc:
        flow.abandon(claim)
        return flow.refused([Problem("build", f"{exc} (The submission was not queued: wait=False.)")])
    except BaseException:
        flow.crashed(claim)
        raise


def edit(
    service: PortalService,
    name: str,
    spec: ProductSpec,
    identity: Identity,
    on_line: LineSink | None = None,
    wait: bool = True,
) -> CreationResult:
    """Change a portal product (metadata and SQL) with the same checks and write-audit-publish.

    A failed product is resubmitted this way. When the edit of a *published* product fails, its
    previous files are put back, so the published product stays as it was (status `restored`).
    """
    flow = _Flow(service, spec, identity, on_line)
    refusal = _unsupported(service.settings) or flow.open_repository()
    if refusal:
        return flow.refused([refusal])
    try:
        row = editable(service, name, identity, EDITABLE, "edited")
    except Refused as exc:
        return flow.refused(exc.problems)
    if spec.name != name:
        return flow.refused(
            [
                Problem(
                    "name",
                    f"A product cannot be renamed (`{name}` -> `{spec.name}`): consumers read it by name. "
                    "Create a new product with the new name and deprecate this one.",
                )
            ]
        )
    problems, _ = _static_problems(service, spec, editing=name)
    problems += owner_problems(identity, spec)
    if problems:
        return flow.refused(problems)
    try:
        with flow.locked(wait):
            validation = flow.recheck()
            if not validation.ok:
                return flow.refused(validation.problems, validation)
            assert validation.files is not None
            before = current_files(service.settings, name)
            changes = edit_changes(spec_of(service, name), spec, before, validation.files)
            if not changes and before == validation.files and row.status == "published":
                return flow.unchanged(validation)  # a rebuild would only hold the project up
            with service.sessions.begin() as session:
                current = session.get_one(DataProduct, row.id)
                if current.status not in EDITABLE:
                    return flow.refused(
                        [Problem("name", f"`{name}` became {current.status} meanwhile; reload and retry.")]
                    )
                previous_status = current.status
                current.status, current.updated_at = "building", datetime.now(UTC)
            restore = before if previous_status == "published" else None
            # A proposal of it still waiting for review is replaced by this one.
            superseded = held.release(service, name, "superseded")
            if superseded:
                flow.stage(
                    f"This edit replaces proposal {', '.join(map(str, superseded))}, which waited for review."
                )
            try:
                flow.start_run(row.id, restore)  # at once: a building product always has its run
                paths = write_product(models_dir(service.settings), validation.files, overwrite=True)
                built = flow.build(
                    row.id, validation, paths, action="product.edited", changes=changes, restore=restore
                )
            except BaseException:
                flow.close_run()
                _abandon_edit(service, row.id, before, previous_status)
                raise
        return flow.profiled(built)
    except DbtBusy as exc:
        return flow.refused([Problem("build", f"{exc} (The edit was not queued: wait=False.)")])


def _abandon_edit(service: PortalService, row_id: int, before: GeneratedFiles, previous_status: str) -> None:
    """An unexpected error during an edit: put the previous files and status back."""
    write_product(models_dir(service.settings), before, overwrite=True)
    with service.sessions.begin() as session:
        row = session.get(DataProduct, row_id)
        if row is not None and row.status == "building":
            row.status = previous_status


def _unsupported(settings: Settings) -> Problem | None:
    reason = publisher_for(settings).unsupported()
    if reason:
        return Problem("warehouse", reason)
    if Path(settings.data_products_path).suffix:
        return Problem(
            "warehouse",
            f"PORTAL_DATA_PRODUCTS_PATH ({settings.data_products_path}) names one file, so there is no "
            "folder for new products. Set it to a folder of the dbt project (e.g. models/data_products).",
        )
    return None


class _Flow:
    """One submission: its progress lines, its timing, and the steps create and edit share."""

    def __init__(
        self, service: PortalService, spec: ProductSpec, identity: Identity, on_line: LineSink | None
    ) -> None:
        self.service, self.spec, self.identity = service, spec, identity
        self.settings = service.settings
        self.publisher = publisher_for(self.settings)  # write-audit-publish on the configured engine
        self.on_line = on_line
        self.lines: list[str] = []
        self.started = time.perf_counter()
        self.run_id: int | None = None
        self.wap_id: str | None = None  # once the run is running
        self.written = False
        self.queued = False  # it waited for another build: its caller was answered "queued"
        self.repository: ProjectRepository | None = None  # the project's git repository, opened once
        self.proposal_id: int | None = None  # the catalog database's record of the commit

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def stage(self, text: str) -> None:
        self.say(STAGE + text)

    def refused(self, problems: list[Problem], validation: Validation | None = None) -> CreationResult:
        return CreationResult(
            self.spec.name,
            "refused",
            problems=list(dict.fromkeys(problems)),
            validation=validation,
            log="\n".join(self.lines),
            run_id=self.run_id,  # a queued submission's refusal is kept as a run
            elapsed_s=time.perf_counter() - self.started,
        )

    def unchanged(self, validation: Validation) -> CreationResult:
        self.stage(f"{self.spec.name} already is what the edit asks for: nothing to rebuild.")
        return CreationResult(
            self.spec.name,
            "unchanged",
            validation=validation,
            log="\n".join(self.lines),
            elapsed_s=time.perf_counter() - self.started,
        )

    @contextmanager
    def locked(self, wait: bool) -> Iterator[None]:
        # project_lock reports only that it has to wait; say it in the flow's own words.
        def waiting(_line: str) -> None:
            self.queued = True
            self.say(WAITING)

        with project_lock(self.settings, wait=wait, on_line=waiting):
            yield

    def recheck(self) -> Validation:
        """`check` again inside the lock: the manifest and warehouse may have changed while this
        submission queued, and the dry run needs the warehouse, which a running build holds.
        The name is this submission's own (claimed, or the product edited), so it is not "taken"."""
        self.stage(f"Checking {self.spec.name} against the project and the warehouse …")
        return check(self.service, self.spec, self.identity, editing=self.spec.name)

    def queue_run(self, row_id: int) -> None:
        """The submission's run, `queued` until it has the build lock (see `start_run`)."""
        self.run_id = start_run(
            self.service,
            selector=self.spec.name,
            triggered_by=self.identity.user,
            product_id=row_id,
            details={QUEUED: True},
            queued=True,
        )

    def abandon(self, claim: Claim) -> None:
        """A submission refused before anything was written, to a caller who hears why: no trace."""
        if self.run_id is not None:
            forget_queued(self.service, self.run_id)
            self.run_id = None
        release(self.service, claim)

    def crashed(self, claim: Claim) -> None:
        """An unexpected error after the claim: free the name if nothing was written, else mark the
        product failed so its owner can resubmit or discard it."""
        if not self.written:
            self.close_run()
            release(self.service, claim)
            return
        self.close_run()
        pin_to_audit(self.settings, self.spec.name)  # its files must not reach gold untested
        with self.service.sessions.begin() as session:
            row = session.get(DataProduct, claim.row_id)
            if row is not None and row.status == "building":
                row.status, row.updated_at = "failed", datetime.now(UTC)

    def close_run(self) -> None:
        """End this submission's run, if it has one, after an unexpected error (or a page rerun
        that stopped its build): a run left `running` by a live process is never recovered."""
        if self.run_id is not None:
            end_interrupted(
                self.service, self.run_id, "Stopped by an unexpected error; see the portal's log."
            )

    def build(
        self,
        row_id: int,
        validation: Validation,
        paths: tuple[Path, Path],
        *,
        action: str,
        changes: Mapping[str, Any] | None = None,
        restore: GeneratedFiles | None = None,
    ) -> CreationResult:
        """Audit, then publish or not, then record; the caller holds the project lock."""
        self.written = True
        name = self.spec.name
        self.stage(f"Wrote {paths[0].name} and {paths[1].name}")
        wap_id = self.start_run(row_id, restore)
        proposal = self.propose(validation, action, changes)
        audit_dir = self.publisher.prepare_audit(name, paths[0])
        # The manifest must say what the files say: the published model, or the failed one with its
        # tests, so the catalog and the product page show what failed. `dbt parse` of the project
        # touches no warehouse, so it runs while the audit builds (its own target directory):
        # the two dbt processes take about as long as one.
        self.stage("Registering the model in the project's manifest (dbt parse), alongside the audit build …")
        assert self.run_id is not None
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbt-parse") as pool,
            cancellable(self.run_id) as stop,  # while it builds, a cancel of the run stops the build
        ):
            # Its log is said afterwards, from this thread: a UI's on_line may only run here.
            parsing = pool.submit(run_dbt, self.settings, ["parse"], lock=False)
            audit = self.publisher.audit(
                name,
                materialization=self.spec.materialization,
                wap_id=wap_id,
                audit_dir=audit_dir,
                say=self.say,
                stage=self.stage,
                stop=stop,
                hold=self.settings.review_required,
            )
            parse = parsing.result()
        if audit.held:
            audit = self.reviewable(audit, proposal)
        for line in parse.log.splitlines():
            self.say(line)
        published = audit.published
        if not published:
            if restore is not None:
                # The parse registered the edit, which failed or waits for review: put the published
                # version's files back (a proposal in review has its own on its branch).
                write_product(models_dir(self.settings), restore, overwrite=True)
                self.stage("Put the published version's files back; the product stays as it was.")
            else:
                # Its files stay for the owner to fix (or the reviewer to approve), pinned to the
                # audit schema, so that a full `dbt build` of the project does not put an unreviewed
                # or untested product in gold.
                assert validation.files is not None
                note = IN_REVIEW_NOTE if audit.held else FAILED_NOTE
                pinned = quarantined(validation.files, AUDIT_SCHEMA, note)
                write_product(models_dir(self.settings), pinned, overwrite=True)
                until = "it is approved" if audit.held else "it passes"
                self.stage(f"Kept its files, pinned to the schema `{AUDIT_SCHEMA}` until {until}.")
            # The parse registered the files as submitted: parse what is there now.
            parse = run_dbt(self.settings, ["parse"], on_line=self.say, lock=False)
        if not parse.ok:
            self.stage(
                "dbt parse failed: the catalog shows the product's changes once the project parses again."
            )
        else:  # the parse compiled nothing; the audit build compiled the product (column lineage)
            # On Trino it compiled through the run's branch catalog: read as the main catalog.
            audit_catalog = audit.record.get("catalog")
            renamed = {str(audit_catalog): self.settings.trino_catalog} if audit_catalog else None
            carry_compiled(
                Path(self.settings.target_dir) / "manifest.json",
                compiled_of(audit_dir / "manifest.json", catalogs=renamed),
            )
        if audit.held:
            status = "in_review"
            git = self.held(proposal)
        else:
            status = "published" if published else ("restored" if restore is not None else "failed")
            git = self.publish_proposal(proposal, action) if published else self.kept(proposal)
        # What consumers see: a held edit of a published product leaves it published meanwhile.
        if published or restore is not None:
            lifecycle = "published"
        else:
            lifecycle = "in_review" if audit.held else "failed"
        self._record(row_id, audit, parse, status, lifecycle, action, changes, git)
        self.service.reload()
        rows = f" ({audit.row_count:,} rows)" if audit.row_count is not None else ""
        if audit.held:
            self.stage(f"{name} waits for a reviewer (proposal {self.proposal_id}){rows}.")
        else:
            self.stage(f"{name} is published{rows}." if published else f"{name} was not published.")
        return CreationResult(
            name,
            status,
            validation=validation,
            outcomes=audit.outcomes,
            log="\n".join(self.lines),
            run_id=self.run_id,
            row_count=audit.row_count,
            files=paths,
            elapsed_s=time.perf_counter() - self.started,
            publish=audit.publish,
            proposal_id=self.proposal_id,
        )

    def profiled(self, result: CreationResult) -> CreationResult:
        """A published product, profiled at once so that its Quality tab and drift start from its
        first build. After the build lock: while a build holds it, DuckDB readers see the
        warehouse as it was before the build, without the new table."""
        if not result.ok:
            return result
        self.stage(profile_published(self.service, result.name, run_id=result.run_id))
        return dataclasses.replace(result, log="\n".join(self.lines))

    def open_repository(self) -> Problem | None:
        """Open the project's git repository for this change, or say why it cannot take it, before
        anything is written."""
        try:
            self.repository = commits.repository(self.settings)
        except PortalError as exc:
            return Problem("project", str(exc))
        return None

    def propose(
        self, validation: Validation, action: str, changes: Mapping[str, Any] | None
    ) -> commits.Committed | None:
        """Commit the files on the proposal's branch, as the person who asked (commits.py)."""
        assert validation.files is not None and self.run_id is not None and self.repository is not None
        name = self.spec.name
        # The message's body: what an edit changed, or what a new product is.
        why = f"Changed: {', '.join(sorted(changes))}." if changes else self.spec.description
        try:
            proposal = commits.propose(
                self.repository,
                self.settings,
                name,
                validation.files,
                self.identity,
                branch=str(self.run_id),
                message=commits.message_for(action, name, self.identity, why),
            )
        except PortalError as exc:  # checked before the claim; a race can still lose it
            self.stage(f"The change could not be committed to the project's git repository: {exc}")
            return None
        self.proposal_id = commits.record(
            self.service.sessions,
            proposal,
            product=name,
            action=action,
            identity=self.identity,
            run_id=self.run_id,
        )
        author = commits.author_of(self.identity)
        self.stage(f"Committed {proposal.commit[:12]} on {proposal.branch}, by {author}")
        return proposal

    def publish_proposal(self, proposal: commits.Committed | None, action: str) -> dict[str, Any] | None:
        """Merge the published change into main and push it; what happened, for the run."""
        if proposal is None:
            return None
        assert self.repository is not None  # a proposal was committed through it
        record: dict[str, Any] = {"branch": proposal.branch, "commit": proposal.commit}
        message = commits.message_for(action, self.spec.name, self.identity, f"Merge {proposal.branch}.")
        try:
            record["main"] = commits.merge(self.repository, proposal, self.identity, message=message)
        except PortalError as exc:
            self.stage(f"Published, but {proposal.branch} could not be merged into main: {exc}")
            return {**record, "error": str(exc)}
        commits.settle(self.service.sessions, proposal.branch, "published", record["main"])
        try:
            pushed = self.repository.push()
        except PortalError as exc:  # main holds the commit; the next push takes it along
            self.stage(f"Merged into main ({record['main'][:12]}), but not pushed: {exc}")
            return {**record, "pushed": False, "push": str(exc)}
        where = "pushed to the remote" if pushed.pushed else f"not pushed ({pushed.reason})"
        self.stage(f"Merged into main ({record['main'][:12]}), {where}.")
        return {**record, "pushed": pushed.pushed, "push": pushed.reason}

    def reviewable(self, audit: Audit, proposal: commits.Committed | None) -> Audit:
        """A held audit, with what approving it needs in its record; one whose change could not be
        committed (a lost race) cannot be reviewed, so it fails instead of waiting for nobody."""
        if proposal is not None:
            return dataclasses.replace(
                audit, record={**audit.record, "materialization": self.spec.materialization}
            )
        error = "it passed, but without its commit there is nothing to review: resubmit it."
        self.stage(f"{self.spec.name} is not held for review: {error}")
        try:
            self.publisher.drop_audit(self.spec.name, audit.record)
        except PortalError as exc:
            self.stage(f"What the build left could not be removed: {exc}")
        return dataclasses.replace(
            audit, held=False, error=error, record={**audit.record, "outcome": "error"}
        )

    def held(self, proposal: commits.Committed | None) -> dict[str, Any] | None:
        """The proposal waits for a reviewer: main is untouched, its branch holds the change."""
        assert proposal is not None  # a change is held only when it was committed
        commits.settle(self.service.sessions, proposal.branch, "in_review")
        self.stage(
            f"Main is unchanged; proposal {self.proposal_id} ({proposal.branch}) waits for a reviewer: "
            f"GET /api/v1/proposals/{self.proposal_id}, or the Review page."
        )
        return {"branch": proposal.branch, "commit": proposal.commit, "proposal": self.proposal_id}

    def kept(self, proposal: commits.Committed | None) -> dict[str, Any] | None:
        if proposal is None:
            return None
        commits.settle(self.service.sessions, proposal.branch, "failed")
        self.stage(f"Main is unchanged; the proposal stays on {proposal.branch}.")
        return {"branch": proposal.branch, "commit": proposal.commit}

    def start_run(self, row_id: int, restore: GeneratedFiles | None) -> str:
        """Record the run as running (a creation's queued run starts); returns the id of its
        write-audit-publish (its Nessie branch). Once running, calling it again changes nothing.

        An edit's run also keeps the published version's files: should this process die during
        the build, recovery (creation/recovery.py) puts them back, and the product stays published.
        """
        if self.wap_id is not None:
            return self.wap_id

        def pending(run_id: int) -> dict[str, Any]:
            # The branch is named after the run, so the id exists only once the run row does.
            self.wap_id = wap_run_id(run_id)
            details: dict[str, Any] = {"wap": self.publisher.pending_record(self.wap_id)}
            if restore is not None:
                details[RESTORE] = {"sql": restore.sql_text, "yml": restore.yml_text}
            return details

        if self.run_id is not None:
            begin_queued(self.service, self.run_id, pending)
        else:
            self.run_id = start_run(
                self.service,
                selector=self.spec.name,
                triggered_by=self.identity.user,
                product_id=row_id,
                details=pending,
            )
        assert self.wap_id is not None
        return self.wap_id

    def _record(
        self,
        row_id: int,
        audit: Audit,
        parse: DbtResult | None,
        status: str,
        lifecycle: str,
        action: str,
        changes: Mapping[str, Any] | None,
        git: Mapping[str, Any] | None = None,
    ) -> None:
        """The run, its node results, the product's status and the audit event, in one transaction."""
        name, now = self.spec.name, datetime.now(UTC)
        published = status == "published"
        results_path = find_artifact(self.publisher.audit_target(name), "run_results")
        results = load_run_results(results_path) if results_path else None
        manifest_path = find_artifact(self.settings.target_dir, "manifest")
        with self.service.sessions.begin() as session:
            run = session.get_one(Run, self.run_id)
            run.finished_at, run.elapsed_s = now, audit.dbt.elapsed_s
            run.log = "\n".join(self.lines)
            run.details = {
                "wap": audit.record,
                "action": action,
                **({"publish_error": audit.error} if audit.error else {}),
                **({"parse_ok": parse.ok} if parse is not None else {}),
                # stopped: timeout or cancelled (then by whom); the log's stage line says which
                **({"stopped": audit.dbt.stopped} if audit.dbt.stopped else {}),
                **({"cancelled_by": audit.dbt.stopped_by} if audit.dbt.stopped_by else {}),
                **({"git": dict(git)} if git is not None else {}),
            }
            run.status = "error"
            if results is not None and results.invocation_id:
                run.invocation_id = results.invocation_id
                # partial: the model built but a test failed; error: nothing passed
                run.status = run_status(r.status for r in results.results)
                if not audit.dbt.ok and run.status == "success":
                    run.status = "error"
            else:
                results = None  # a build stopped before dbt wrote its results: no node results
            if manifest_path is not None:
                # The product's facts (and, with results, node results and test names) from the
                # project's manifest, so the product's page shows this run's tests; sync finds our
                # run by its invocation id. Also for a stopped build: the facts are this build's
                # to state, not a later sync's `product.updated`.
                artifacts = Artifacts(load_manifest(manifest_path), results, None)
                sync(
                    session,
                    artifacts,
                    data_products_path=self.settings.data_products_path,
                    actor=self.identity.user,
                    explained=(name,),  # this build's own event, below, says what changed
                )
            if audit.error or audit.dbt.stopped:  # a stopped build is no success, not even a partial one
                run.status = "error"
            row = session.get_one(DataProduct, row_id)
            # restored: the published version's files are back, and gold still holds its table
            row.status, row.updated_at = lifecycle, now
            if published:
                row.row_count, row.row_count_measured_at = audit.row_count, now
            detail: dict[str, Any] = {"run_id": self.run_id, "status": status}
            if git is not None:
                detail["commit"] = git["commit"]
            if changes is not None:
                detail["changes"] = dict(changes)
            if not published:
                detail["attempted"] = action
            if audit.dbt.stopped:
                detail["stopped"] = audit.dbt.stopped
                if audit.dbt.stopped_by:
                    detail["cancelled_by"] = audit.dbt.stopped_by
            if audit.held:
                event = "proposal.submitted"
                detail["proposal"] = self.proposal_id
            else:
                event = action if published else "product.build_failed"
            add_event(
                session,
                self.identity,  # the user, and their teams
                event,
                "data_product",
                name,
                detail,
            )
        assert self.run_id is not None
        announce_end(self.service, self.run_id)  # lineage backends hear how it ended


__all__ = [
    "STAGE",
    "WAITING",
    "CreationResult",
    "Validation",
    "check",
    "create",
    "edit",
    "product_types",
]
