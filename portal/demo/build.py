"""Builds the demo: silver data, `dbt build`, `dbt docs generate`, sync and row counts.

Used by `make demo` (always rebuilds), by `make run` (builds only what is missing) and by
the test suite's session fixture (a small scale in a temporary directory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portal.demo import silver
from portal.demo.template import DEMO_TEMPLATE, copy_template, mark_taken, take_template
from portal.errors import UpstreamError
from portal.observability import history
from portal.project.artifacts import find_artifact
from portal.project.dbt_runner import DbtResult, project_lock, run_dbt
from portal.project.repository import ProjectRepository
from portal.settings import Settings

Say = Callable[[str], None]
# The portal serves a copy of the demo project (PORTAL_DBT_PROJECT_DIR, var/project by default)
# that is a git repository of its own: products created in the portal are commits there, never
# files in the portal's own source tree; a newer dbt/ reaches it as a merge (demo/template.py).


class DemoBuildFailed(UpstreamError):
    """dbt failed while building the demo; the message carries the end of dbt's log."""


@dataclass(frozen=True)
class DemoReport:
    rows: dict[str, int]
    build: DbtResult
    docs: DbtResult
    row_counts: dict[str, int | None]


def demo_is_built(settings: Settings) -> bool:
    """The warehouse file and the artifacts the portal reads are all there."""
    target = settings.target_dir
    return (
        (settings.dbt_project_dir / "dbt_project.yml").exists()
        and settings.duckdb_path.exists()
        and find_artifact(target, "manifest") is not None
        and find_artifact(target, "catalog") is not None
    )


def _checked(result: DbtResult, what: str) -> DbtResult:
    if not result.ok:
        raise DemoBuildFailed(
            f"{what} failed (exit {result.returncode}). The end of dbt's log:\n{result.tail()}"
        )
    return result


def ensure_demo_project(settings: Settings, *, say: Say = print, template: Path = DEMO_TEMPLATE) -> None:
    """Copy the demo project to PORTAL_DBT_PROJECT_DIR unless a project is there, and make the
    copy a git repository of its own (its first commit: the project as shipped)."""
    project = settings.dbt_project_dir
    if (project / "dbt_project.yml").exists():
        return
    if project.exists() and any(project.iterdir()):
        raise DemoBuildFailed(
            f"{project} is not empty but holds no dbt_project.yml: move it away, or set "
            "PORTAL_DBT_PROJECT_DIR to the dbt project the portal should serve."
        )
    say(f"Copying the demo dbt project to {project}, a git repository of its own …")
    copy_template(project, template=template)
    mark_taken(ProjectRepository.ensure(project, remote=settings.git_remote or None))


def build_demo(settings: Settings, *, say: Say = print) -> DemoReport:
    """Generate the silver tables and build, document and register every model."""
    from portal.service import PortalService  # the service imports heavier modules

    if settings.warehouse != "duckdb":
        raise DemoBuildFailed(
            "The demo builds the embedded DuckDB warehouse; unset PORTAL_WAREHOUSE to use it."
        )
    say(
        f"Generating silver data at scale {settings.demo_scale:g} (seed {settings.demo_seed}) "
        f"into {settings.duckdb_path} …"
    )
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    rows = silver.generate(
        settings.duckdb_path,
        scale=settings.demo_scale,
        seed=settings.demo_seed,
        schema=settings.silver_schema,
    )
    say("  " + ", ".join(f"{table}: {count:,}" for table, count in rows.items()))
    ensure_demo_project(settings, say=say)
    with project_lock(settings):  # a running portal commits to the same main
        taken = take_template(settings, say=say)  # a newer dbt/ than the copy's
    if taken.conflicts:
        say(
            f"The demo project shipped in dbt/ changed {', '.join(taken.conflicts)}, which the portal "
            f"changed too in {settings.dbt_project_dir}: kept the copy as it is. Merge dbt/ into it by "
            "hand, or move the copy away to start afresh."
        )
    say("Running dbt build …")
    build = _checked(run_dbt(settings, ["build"], on_line=say), "dbt build")
    service = PortalService(settings)
    # Sync now: `dbt docs generate` overwrites run_results.json with its own results.
    service.reload()
    say("Running dbt docs generate …")
    docs = _checked(run_dbt(settings, ["docs", "generate"], on_line=say), "dbt docs generate")
    service.reload()
    counts = service.refresh_row_counts()
    say("Profiling the data products (row counts, nulls, distributions, freshness) …")
    history.profile_products(service)
    say("Data products: " + ", ".join(f"{name} ({count:,} rows)" for name, count in counts.items() if count))
    return DemoReport(rows=rows, build=build, docs=docs, row_counts=counts)
