"""A portal product's life around its builds: where its files live, who may change it, claiming
its name for a submission (and releasing it), what an interrupted creation left, discarding and
deprecating it, and reading its files back into a spec (to fill the edit form, and to say what an
edit changes).

The creation flow (portal/creation/flow.py) builds on these; this module imports no web
framework (DESIGN principle 1).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.exc import IntegrityError

from catalog_db.models import DataProduct, Proposal, Run
from portal import audit
from portal.auth import access as auth
from portal.auth.identity import Identity
from portal.creation import commits, held
from portal.creation.publish.base import AUDIT_SCHEMA
from portal.creation.publish.registry import publisher_for
from portal.creation.scaffold import (
    GeneratedFiles,
    Orphan,
    ScaffoldError,
    find_orphans,
    product_paths,
    quarantined,
    remove_product,
    write_product,
)
from portal.creation.spec import Problem, ProductSpec
from portal.errors import Conflict, NotFound, PortalError
from portal.project.artifacts import Manifest, find_artifact, load_manifest
from portal.project.dbt_runner import DbtBusy, project_lock, run_dbt
from portal.project.locks import LockBusy, build_lock
from portal.service import PortalService
from portal.settings import Settings
from portal.warehouse import WarehouseError

log = logging.getLogger(__name__)

_CONFIG_END = "\n) }}\n"
_JINJA_RELATION = re.compile(r"\{\{ (ref|source)\(((?:'[A-Za-z0-9_]+'(?:, )?)+)\) \}\}")
_MATERIALIZED = re.compile(r"materialized='(\w+)'")


class Refused(Conflict):
    """A lifecycle action (discard, deprecate) was refused; `problems` say why and what to do."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(" ".join(problem.message for problem in problems), problems=problems)
        self.problems = problems


# --- rules in one place --------------------------------------------------------------------


def can_edit(identity: Identity, product: DataProduct) -> bool:
    """Who may edit, deprecate or discard a product: the rules of `portal.auth.access` (its creator or
    owner with the creator role, or an admin; the embedded default's local user is an admin)."""
    return auth.may(identity, "edit", product)


def models_dir(settings: Settings) -> Path:
    """Where products' files go: `<dbt project>/<data_products_path>`."""
    return settings.dbt_project_dir / settings.data_products_path


def model_of(manifest: Manifest, name: str) -> str | None:
    """The unique id of the model called `name`, if the manifest has one."""
    return next((node.unique_id for node in manifest.models() if node.name == name), None)


def orphans(service: PortalService) -> list[Orphan]:
    """What an interrupted creation left: half-written or partnerless files (scaffold), and
    products still marked `building` although no build holds the project's lock."""
    found = find_orphans(models_dir(service.settings))
    with service.sessions() as session:
        building = list(
            session.scalars(
                sa.select(DataProduct).where(DataProduct.status == "building", DataProduct.origin == "portal")
            )
        )
    if building:
        try:  # a probe of the lock alone: the hold that builds (project_lock) also copies the warehouse
            with build_lock(service.settings).hold(wait=False):
                pass
        except LockBusy:
            return found  # a build is running: `building` is true for now
        for row in building:
            sql_path, _ = product_paths(models_dir(service.settings), row.name)
            found.append(
                Orphan(sql_path, "registered as building but no build is running; discard or resubmit it")
            )
    return found


# --- claiming a name -----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A name registered for one submission: the product's row, in status `building`."""

    row_id: int
    reclaimed: bool  # took over the row of a removed product (restore it on refusal)


def claim_name(service: PortalService, spec: ProductSpec, identity: Identity) -> Claim | Problem:
    """Register the name (status building); a Problem when someone else holds it."""
    now = datetime.now(UTC)
    facts: dict[str, Any] = {
        "data_product_type": spec.data_product_type,
        "description": spec.description,
        "owner": spec.owner,
        "consumers": list(spec.consumers),
        "update_frequency": spec.update_frequency,
        "tags": list(spec.tags),
        "materialization": spec.materialization,
        "status": "building",
        "origin": "portal",
        "created_by": identity.user,
        "created_at": now,
        "updated_at": now,
        "row_count": None,
        "row_count_measured_at": None,
    }
    with service.sessions.begin() as session:
        # A discarded product's name may be used again: its row is taken over in one UPDATE,
        # which only one of several concurrent submissions can win.
        taken_over = session.execute(
            sa.update(DataProduct)
            .where(DataProduct.name == spec.name, DataProduct.status == "removed")
            .values(**facts)
            .returning(DataProduct.id)
        ).scalar_one_or_none()
    if taken_over is not None:
        return Claim(taken_over, reclaimed=True)
    try:
        with service.sessions.begin() as session:
            row = DataProduct(name=spec.name, **facts)
            session.add(row)
            session.flush()
            return Claim(row.id, reclaimed=False)
    except IntegrityError:
        with service.sessions() as session:
            holder = session.scalar(sa.select(DataProduct).where(DataProduct.name == spec.name))
        state = f" ({holder.status}, created by {holder.created_by})" if holder else ""
        return Problem(
            "name",
            f"`{spec.name}` is already taken{state}: another submission registered it first. Choose another "
            "name, or edit that product once it is built.",
        )


def release(service: PortalService, claim: Claim) -> None:
    """Undo a claim whose creation was refused: the name is free again, nothing remains."""
    with service.sessions.begin() as session:
        row = session.get(DataProduct, claim.row_id)
        if row is None:
            return
        if claim.reclaimed:
            row.status = "removed"
        else:
            session.delete(row)


def refuse_queued(
    service: PortalService, claim: Claim, identity: Identity, problems: Sequence[Problem], run_id: int
) -> None:
    """A submission that queued (its caller was told "accepted, queued", with its run) and was
    then refused by the recheck: the name is free again, as after any refusal, but the refusal is
    kept in its run and an audit event, so the submitter can read why."""
    now = datetime.now(UTC)
    messages = [problem.message for problem in problems]
    with service.sessions.begin() as session:
        row = session.get_one(DataProduct, claim.row_id)
        row.status, row.updated_at = "removed", now
        run = session.get_one(Run, run_id)
        run.status, run.finished_at = "error", now
        run.elapsed_s = (now - run.started_at).total_seconds()
        run.log = "\n".join(["Refused after waiting for another build:", *messages])
        run.details = {"refused": [{"field": p.field, "message": p.message} for p in problems]}
        detail = {"run_id": run.id, "problems": messages}
        audit.add_event(session, identity, "product.refused", "data_product", row.name, detail)


def why_missing(service: PortalService, name: str) -> str | None:
    """Why there is no product `name`, when its queued submission was refused (else None):
    the sentence a lookup of the name answers with, so the submitter learns what to fix."""
    refusal = refusal_of(service, name)
    if refusal is None:
        return None
    run_id, messages = refusal
    return (
        f"{name} is not a data product: its submission waited for another build and was then refused "
        f"(run {run_id}, /api/v1/runs/{run_id}): {' '.join(messages)} Fix that and submit it again."
    )


def refusal_of(service: PortalService, name: str) -> tuple[int, list[str]] | None:
    """The run and messages of `name`'s queued submission that was refused, if that is the last
    thing that happened to the name (None once it was claimed again)."""
    with service.sessions() as session:
        found = session.execute(
            sa.select(Run.id, Run.details)
            .join(DataProduct, Run.product_id == DataProduct.id)
            .where(DataProduct.name == name, DataProduct.status == "removed")
            .order_by(Run.id.desc())
            .limit(1)
        ).first()
    if found is None or not isinstance(found.details, dict) or "refused" not in found.details:
        return None
    return found.id, [str(p.get("message")) for p in found.details["refused"] if isinstance(p, dict)]


def pin_to_audit(settings: Settings, name: str) -> None:
    """Pin a product's files (if any were written) to the audit schema, so that a full `dbt build`
    of the project cannot put an untested product in gold; already pinned files stay as they are."""
    directory = models_dir(settings)
    sql_path, yml_path = product_paths(directory, name)
    if not (sql_path.exists() and yml_path.exists()):
        return
    files = GeneratedFiles(
        name=name, sql_text=sql_path.read_text("utf-8"), yml_text=yml_path.read_text("utf-8")
    )
    try:
        pinned = quarantined(files, AUDIT_SCHEMA)
    except ScaffoldError:
        return  # already pinned, or not the portal's config block: leave the files as they are
    write_product(directory, pinned, overwrite=True)


# --- discard and deprecate -----------------------------------------------------------------


def editable(
    service: PortalService, name: str, identity: Identity, statuses: Sequence[str], verb: str, hint: str = ""
) -> DataProduct:
    """The product row, if `identity` may act on it in its current status; else Refused.
    `hint` says what to do instead when the status is the obstacle."""
    with service.sessions() as session:
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == name))
    if row is None or row.status == "removed":
        raise Refused([Problem("name", f"There is no data product `{name}`. Pick one from the catalog.")])
    if row.origin != "portal":
        raise Refused(
            [
                Problem(
                    "name",
                    f"`{name}` is written by hand in the dbt project, not generated by the portal, so it can only "
                    "be changed there (e.g. set `config.meta.deprecated: true` in its YAML to deprecate it).",
                )
            ]
        )
    if not can_edit(identity, row):
        raise Refused(
            [
                Problem(
                    "name",
                    f"Only the owner ({row.owner}), its creator ({row.created_by}) or an admin may change `{name}`; "
                    f"you are {identity.user}. Ask one of them.",
                )
            ]
        )
    if row.status not in statuses:
        raise Refused(
            [
                Problem(
                    "name",
                    f"`{name}` is {row.status}; only {' or '.join(statuses)} products can be {verb}.{hint}",
                )
            ]
        )
    return row


def discard(service: PortalService, name: str, identity: Identity) -> list[Path]:
    """Remove a never published portal product's files (failed, in review, rejected, draft, or
    building left by a dead portal) and mark it removed.

    Returns the files removed. Published products are deprecated, never discarded.
    """
    row = editable(
        service,
        name,
        identity,
        ("failed", "draft", "building", "in_review", "rejected"),
        "discarded",
        " A published product may have consumers: deprecate it instead.",
    )
    settings = service.settings
    try:
        # A product is `building` while a build holds the lock; if the lock is free, the build
        # that set it died (the portal was killed), and the product may be discarded.
        with project_lock(settings, wait=row.status != "building"):
            removed = remove_product(models_dir(settings), name)
            held.release(service, name, "discarded")  # data held for review (a Nessie branch)
            publisher_for(settings).drop_audit(name)
            # Never published, so never on main: its proposals' branches are all git has of it.
            try:
                branches = commits.discard(commits.repository(settings), name)
                commits.discarded(service.sessions, name)
            except PortalError as exc:  # the files are gone either way; say what git kept
                log.warning("%s's proposal branches could not be removed: %s", name, exc)
                branches = []
            manifest_path = find_artifact(settings.target_dir, "manifest")
            if manifest_path and model_of(load_manifest(manifest_path), name):
                parse = run_dbt(settings, ["parse"], lock=False)
                if not parse.ok:
                    raise WarehouseError(f"dbt parse failed after removing {name}'s files:\n{parse.tail()}")
            with service.sessions.begin() as session:
                current = session.get_one(DataProduct, row.id)
                audit.add_event(
                    session,
                    identity,
                    "product.discarded",
                    "data_product",
                    name,
                    {"from_status": current.status, "files": [p.name for p in removed], "branches": branches},
                )
                current.status, current.updated_at = "removed", datetime.now(UTC)
    except DbtBusy:
        raise Refused(
            [
                Problem(
                    "name",
                    f"`{name}` is being built right now. Wait for the build to finish, then discard it.",
                )
            ]
        ) from None
    service.reload()
    return removed


def deprecate(service: PortalService, name: str, identity: Identity) -> None:
    """Mark a product deprecated in the catalog and in its YAML (`meta.deprecated: true`).

    Its files and table stay: consumers keep reading it while they move off it.
    """
    row = editable(service, name, identity, ("published", "failed"), "deprecated")
    settings = service.settings
    sql_path, yml_path = product_paths(models_dir(settings), name)
    with project_lock(settings):
        document = yaml.safe_load(yml_path.read_text(encoding="utf-8"))
        model = _model_entry(document, name, yml_path)
        model.setdefault("config", {}).setdefault("meta", {})["deprecated"] = True
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
        files = GeneratedFiles(name, sql_path.read_text(encoding="utf-8"), text)
        if row.status == "published":  # a published product's files are main's: the change is a commit
            _commit_deprecation(service, files, identity)
        write_product(models_dir(settings), files, overwrite=True)
        # The catalog first, so the sync after the parse finds nothing to change (and records no
        # second, anonymous deprecation).
        with service.sessions.begin() as session:
            current = session.get_one(DataProduct, row.id)
            audit.add_event(
                session,
                identity,
                "product.deprecated",
                "data_product",
                name,
                {"from_status": current.status},
            )
            current.status, current.updated_at = "deprecated", datetime.now(UTC)
        parse = run_dbt(settings, ["parse"], lock=False)
    service.reload()
    if not parse.ok:
        raise WarehouseError(
            f"{name} is deprecated, but dbt parse failed, so the catalog shows it once the project "
            f"parses again:\n{parse.tail()}"
        )


def _commit_deprecation(service: PortalService, files: GeneratedFiles, identity: Identity) -> None:
    """Deprecating is a commit on a branch of its own, merged into main at once (nothing to build);
    the checkout gets the new YAML from the merge, before the catalog says deprecated."""
    branch = datetime.now(UTC).strftime("deprecate-%Y%m%dT%H%M%S%f")
    message = commits.message_for("product.deprecated", files.name, identity)
    settings = service.settings
    repo = commits.repository(settings)  # once: it asks the remote
    proposal = commits.propose(repo, settings, files.name, files, identity, branch=branch, message=message)
    commits.record(
        service.sessions,
        proposal,
        product=files.name,
        action="product.deprecated",
        identity=identity,
        run_id=None,
    )
    merged = commits.merge(repo, proposal, identity, message=message)
    commits.settle(service.sessions, proposal.branch, "published", merged)
    try:
        repo.push()
    except PortalError as exc:  # main holds the commit; the next push takes it along
        log.warning("%s is deprecated and committed, but main was not pushed: %s", files.name, exc)


# --- reading a product back into a spec ----------------------------------------------------


def spec_of(service: PortalService, name: str, *, proposal_id: int | None = None) -> ProductSpec:
    """The spec a portal product's files describe, to fill the edit form: the files of the
    project as they are, or of one of its proposals (a stale, rejected or expired one is the
    author's draft to resubmit, which main does not hold).

    The SQL comes back as plain SQL: the `{{ ref() }}` / `{{ source() }}` calls the portal wrote
    become the model and source names they stand for, which validate to the same model.
    """
    sql_path, yml_path = product_paths(models_dir(service.settings), name)
    if proposal_id is None:
        sql_text = sql_path.read_text(encoding="utf-8")
        yml_text = yml_path.read_text(encoding="utf-8")
    else:
        sql_text, yml_text = _proposal_files(service, name, proposal_id, sql_path, yml_path)
    document = yaml.safe_load(yml_text)
    model = _model_entry(document, name, yml_path)
    meta = (model.get("config") or {}).get("meta") or {}
    columns = model.get("columns") or []
    key = [c["name"] for c in columns if "unique" in (c.get("data_tests") or [])]
    for test in model.get("data_tests") or []:
        if isinstance(test, dict) and "unique_combination_of_columns" in test:
            key = list(test["unique_combination_of_columns"]["arguments"]["combination_of_columns"])
    materialized = _MATERIALIZED.search(sql_text)
    return ProductSpec(
        name=name,
        description=model.get("description", ""),
        data_product_type=meta.get("data_product_type", "CUSTOM"),
        owner=meta.get("owner", ""),
        consumers=tuple(meta.get("consumers") or ()),
        update_frequency=meta.get("update_frequency", "daily"),
        tags=tuple(meta.get("tags") or ()),
        primary_key=tuple(key),
        materialization=materialized[1] if materialized else "table",
        sql=_plain_sql(sql_text),
        column_descriptions={c["name"]: c["description"] for c in columns if c.get("description")},
    )


def _proposal_files(
    service: PortalService, name: str, proposal_id: int, sql_path: Path, yml_path: Path
) -> tuple[str, str]:
    """The product's two files as proposal `proposal_id` committed them (its commit outlives its
    branch, so an expired proposal's draft is there too)."""
    with service.sessions() as session:
        proposal = session.get(Proposal, proposal_id)
    if proposal is None or proposal.product != name:
        raise NotFound(f"{name} has no proposal {proposal_id}; open the product's page for its proposals.")
    repo = commits.repository(service.settings)
    project = service.settings.dbt_project_dir
    texts = [repo.read(proposal.commit_sha, str(path.relative_to(project))) for path in (sql_path, yml_path)]
    if texts[0] is None or texts[1] is None:
        raise NotFound(
            f"Proposal {proposal_id} holds no files of {name} (it removed the product); edit the product as it is."
        )
    return texts[0], texts[1]


def _model_entry(document: Any, name: str, path: Path) -> dict[str, Any]:
    """The product's entry in its YAML, or a refusal saying how to repair a hand-edited file."""
    models = document.get("models") if isinstance(document, dict) else None
    for model in models or []:
        if isinstance(model, dict) and model.get("name") == name:
            return model
    raise Refused(
        [
            Problem(
                "name",
                f"{path} has no model named `{name}` (was it edited by hand?). Restore the file from version "
                "control, or discard the product and create it again.",
            )
        ]
    )


def _plain_sql(model_sql: str) -> str:
    body = model_sql.split(_CONFIG_END, 1)[-1].strip()

    def plain(match: re.Match[str]) -> str:
        args = [arg.strip("'") for arg in match[2].split(", ")]
        return ".".join(args) if match[1] == "source" else args[-1]

    return _JINJA_RELATION.sub(plain, body)


def current_files(settings: Settings, name: str) -> GeneratedFiles:
    """The product's files as they are now."""
    sql_path, yml_path = product_paths(models_dir(settings), name)
    return GeneratedFiles(name, sql_path.read_text(encoding="utf-8"), yml_path.read_text(encoding="utf-8"))


def edit_changes(
    old: ProductSpec, new: ProductSpec, old_files: GeneratedFiles, new_files: GeneratedFiles
) -> dict[str, Any]:
    """What an edit changes, field by field, for the audit event. The SQL is compared as the
    model body the portal writes, so re-indenting the same query is no change."""
    changed: dict[str, Any] = {}
    for name in (
        "description",
        "data_product_type",
        "owner",
        "consumers",
        "update_frequency",
        "tags",
        "primary_key",
        "materialization",
        "column_descriptions",
    ):
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changed[name] = {"from": _plain(before), "to": _plain(after)}
    old_body = old_files.sql_text.split(_CONFIG_END, 1)[-1].strip()
    new_body = new_files.sql_text.split(_CONFIG_END, 1)[-1].strip()
    if old_body != new_body:
        changed["sql"] = {"from": old_body, "to": new_body}
    return changed


def _plain(value: Any) -> Any:
    """JSON-friendly: tuples as lists."""
    return list(value) if isinstance(value, tuple) else value


__all__ = [
    "Claim",
    "Refused",
    "can_edit",
    "claim_name",
    "current_files",
    "deprecate",
    "discard",
    "edit_changes",
    "editable",
    "model_of",
    "models_dir",
    "orphans",
    "pin_to_audit",
    "refusal_of",
    "refuse_queued",
    "release",
    "spec_of",
    "why_missing",
]
