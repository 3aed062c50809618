"""Recovery after a crash: runs whose process died are ended, and their products put back.

A portal process killed in the middle of a build (kill -9, an out-of-memory kill, a machine that
went away) leaves its run `running` and its product `building`, which refuses every change to
it. Each running run holds a lease (`portal/runs.py`); once the lease has expired this module
ends the run as interrupted and puts the product where a failed build would have left it:

- a creation still waiting for the build lock had written nothing: its name is freed;
- an edit of a published product gets the published files back (kept in the run's details
  for this), and stays published;
- a first creation becomes `failed`, its files pinned to the audit schema (so a full `dbt
  build` of the project cannot put it in gold untested), for its owner to resubmit or discard;
- what the audit build left behind is removed: the audit table on DuckDB, the run's Trino catalog
  and Nessie branch on Trino.

dbt itself dies with the process that started it (`project/dbt_runner.py`), so nothing is
still writing when this runs. It is cheap when there is nothing to recover (one query), so the
API runs it at start and before every submission, and `refresh --due` before its work.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from catalog_db.models import DataProduct
from portal import audit, runs
from portal.creation.flow import QUEUED, RESTORE
from portal.creation.lifecycle import models_dir, pin_to_audit
from portal.creation.publish.registry import publisher_for
from portal.creation.scaffold import GeneratedFiles, write_product
from portal.project.dbt_runner import DbtBusy, project_lock, run_dbt
from portal.service import PortalService

log = logging.getLogger(__name__)
ACTOR = "portal-recovery"


def recover_interrupted(service: PortalService) -> list[str]:
    """End every run whose process is gone and put its product back; what was done, in words."""
    orphans = runs.orphan_runs(service)
    if not orphans:
        return []
    # The project lock: a live build is never touched, and the parse below needs it. If another
    # build holds it, recovery waits for the next call rather than holding this one up.
    try:
        with project_lock(service.settings, wait=False):
            done = _recover(service)
    except DbtBusy:
        return []
    service.reload()
    for line in done:
        log.warning("recovered %s", line)
    return done


def _recover(service: PortalService) -> list[str]:
    done, rebuilt = [], False
    for orphan in runs.orphan_runs(service):  # again, in the lock: another process may have recovered some
        product = orphan.product
        message = "Interrupted: the portal process building this run ended before it finished."
        if product is not None and orphan.details.get(QUEUED):  # a creation that never started
            message += " " + _free_name(service, product)
        elif product is not None and "wap" in orphan.details:  # a creation or an edit
            message += " " + _put_back(service, product, orphan.details)
            rebuilt = True
        if runs.end_interrupted(service, orphan.id, message):
            done.append(f"run {orphan.id}" + (f" ({product})" if product else "") + f": {message}")
    if rebuilt:
        parse = run_dbt(service.settings, ["parse"], lock=False)  # the manifest says what the files say now
        if not parse.ok:
            log.warning("dbt parse failed after recovering interrupted runs:\n%s", parse.tail())
    return done


def _free_name(service: PortalService, name: str) -> str:
    """The product of a creation interrupted while it waited for the build lock: nothing was
    written, so its name is free again, as after a refusal."""
    with service.sessions.begin() as session:
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == name))
        if row is None or row.status != "building":
            return "Its product had already moved on."
        row.status, row.updated_at = "removed", datetime.now(UTC)
        audit.add_event(
            session, ACTOR, "product.build_interrupted", "data_product", name, {"status": row.status}
        )
    return "It was waiting for another build, so nothing was written and its name is free: submit it again."


def _put_back(service: PortalService, name: str, details: dict[str, Any]) -> str:
    """The product of an interrupted creation run, as a failed build would have left it."""
    settings = service.settings
    left = ""
    record = details.get("wap")
    try:  # the audit relation (DuckDB), or the run's Trino catalog and Nessie branch
        publisher_for(settings).drop_audit(name, record if isinstance(record, dict) else None)
    except Exception as exc:  # the warehouse may be down: recover the product all the same
        log.warning("could not remove what the interrupted audit of %s left", name, exc_info=True)
        where = (
            f" (Nessie branch {record.get('branch')})"
            if isinstance(record, dict) and record.get("branch")
            else ""
        )
        left = f" What its audit build left{where} could not be removed, so remove it by hand: {exc}"
    restore = details.get(RESTORE)
    now = datetime.now(UTC)
    with service.sessions.begin() as session:
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == name))
        if row is None or row.status != "building":
            return "Its product had already moved on."
        if isinstance(restore, dict) and {"sql", "yml"} <= set(restore):
            files = GeneratedFiles(name=name, sql_text=str(restore["sql"]), yml_text=str(restore["yml"]))
            write_product(models_dir(settings), files, overwrite=True)
            row.status, row.updated_at = "published", now
            outcome = "The edit was not published; the published version's files are back."
        else:
            pin_to_audit(settings, name)
            row.status, row.updated_at = "failed", now
            outcome = "The product was not published: resubmit it, or discard it."
        audit.add_event(
            session, ACTOR, "product.build_interrupted", "data_product", name, {"status": row.status}
        )
    return outcome + left


__all__ = ["recover_interrupted"]
