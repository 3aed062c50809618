"""Every change of a portal product is a git commit in the project's own repository.

A creation or an edit is committed, before it is built, on the proposal's branch
`product/<name>/<run id>`, authored by the person who asked; a deprecation likewise on a branch
of its own. When the product is published the branch is merged into main (the branch then goes:
main's history holds its commits) and main is pushed to PORTAL_GIT_REMOTE. A proposal that
fails keeps its branch, so what was tried stays on record; discarding the product removes its
branches. The repository itself is `portal.project.repository`; this module only says which
files and whose name.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog_db.models import DECIDED_PROPOSAL_STATES, Proposal
from portal.auth.identity import Identity
from portal.creation.scaffold import GeneratedFiles, product_paths
from portal.project.repository import Author, ProjectRepository
from portal.settings import Settings

BRANCHES = "product/"
# Proposals that never reached main: discarding the product ends them.
UNMERGED = ("open", "in_review", "failed", "rejected", "expired", "stale")
OPEN_REVIEW = ("in_review", "stale")  # waiting for a decision, their data held
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\Z")


@dataclass(frozen=True)
class Committed:
    """A product change as committed: its branch, its commit, and main when it was made."""

    branch: str
    commit: str
    base: str


def repository(settings: Settings) -> ProjectRepository:
    """The served project's repository, checked (or made, and joined to its remote) once per
    change: `ensure` asks the remote, so a change opens it once and passes it along (PortalError
    when it cannot be used)."""
    return ProjectRepository.ensure(settings.dbt_project_dir, remote=settings.git_remote or None)


def author_of(identity: Identity) -> Author:
    """The commit author for `identity`: a signed-in user's name is their e-mail address; any
    other name gets an address on this host, so `git log` still says who it was."""
    if _EMAIL.match(identity.user):
        return Author(identity.user, identity.user)
    return Author(identity.user, f"{identity.user}@{socket.gethostname() or 'localhost'}")


def _changes(settings: Settings, name: str, files: GeneratedFiles | None) -> Mapping[str, bytes | None]:
    """The product's two files as repository paths: their new text, or None to remove them."""
    repo_root = settings.dbt_project_dir.resolve()
    models = (settings.dbt_project_dir / settings.data_products_path).resolve()
    sql_path, yml_path = (path.relative_to(repo_root).as_posix() for path in product_paths(models, name))
    if files is None:
        return {sql_path: None, yml_path: None}
    return {sql_path: files.sql_text.encode(), yml_path: files.yml_text.encode()}


def propose(
    repo: ProjectRepository,
    settings: Settings,
    name: str,
    files: GeneratedFiles | None,
    identity: Identity,
    *,
    branch: str,
    message: str,
) -> Committed:
    """Commit the product's files (None: their removal) on `product/<name>/<branch>`, from main."""
    full = f"{BRANCHES}{name}/{branch}"
    base = repo.head()
    assert base is not None  # ensure() made main
    sha = repo.commit(full, _changes(settings, name, files), author=author_of(identity), message=message)
    return Committed(full, sha, base)


def merge(repo: ProjectRepository, proposal: Committed, identity: Identity, *, message: str) -> str:
    """Merge the proposal into main and drop its branch (main's history holds its commits)."""
    main = repo.merge(proposal.branch, author=author_of(identity), message=message)
    repo.delete_branch(proposal.branch)
    return main


def discard(repo: ProjectRepository, name: str) -> list[str]:
    """Remove every proposal branch of `name` (a discarded product's tries); returns them."""
    branches = repo.branches(f"{BRANCHES}{name}/")
    for branch in branches:
        repo.delete_branch(branch)
    return branches


# --- the catalog database's record of each proposal ------------------------------------------


def record(
    sessions: sessionmaker[Session],
    committed: Committed,
    *,
    product: str,
    action: str,
    identity: Identity,
    run_id: int | None,
) -> int:
    """Keep the proposal in the catalog database (its files are in git); returns its id."""
    with sessions.begin() as session:
        row = Proposal(
            product=product,
            action=action,
            branch=committed.branch,
            commit_sha=committed.commit,
            base_sha=committed.base,
            author=identity.user,
            state="open",
            run_id=run_id,
        )
        session.add(row)
        session.flush()
        return row.id


def settle(sessions: sessionmaker[Session], branch: str, state: str, merged: str | None = None) -> None:
    """What became of the proposal on `branch`: published (merged as `merged`), failed, or
    waiting in review (undecided yet)."""
    with sessions.begin() as session:
        row = session.scalars(select(Proposal).where(Proposal.branch == branch)).one()
        row.state, row.merged_sha = state, merged
        row.decided_at = datetime.now(UTC) if state in DECIDED_PROPOSAL_STATES else None


def discarded(sessions: sessionmaker[Session], product: str) -> None:
    """The product was discarded: its proposals that never reached main end with it."""
    with sessions.begin() as session:
        rows = session.scalars(
            select(Proposal).where(Proposal.product == product, Proposal.state.in_(UNMERGED))
        )
        for row in rows:
            row.state, row.decided_at = "discarded", datetime.now(UTC)


def proposals(
    sessions: sessionmaker[Session],
    *,
    state: str | None = None,
    author: str | None = None,
    product: str | None = None,
    limit: int = 100,
) -> list[Proposal]:
    """Proposals, newest first, filtered by state, author and product."""
    query = select(Proposal).order_by(Proposal.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Proposal.state == state)
    if author is not None:
        query = query.where(Proposal.author == author)
    if product is not None:
        query = query.where(Proposal.product == product)
    with sessions() as session:
        return list(session.scalars(query))


def message_for(action: str, name: str, identity: Identity, detail: str = "") -> str:
    """A commit message that says what and who, in git's shape (a subject line, then why)."""
    verb = {
        "product.created": "Create",
        "product.edited": "Edit",
        "product.deprecated": "Deprecate",
    }.get(action, action)
    body = f"\n\n{detail}" if detail else ""
    return f"{verb} data product {name}{body}\n\nAsked by {identity.user} in the Asgard portal."


__all__ = [
    "Committed",
    "author_of",
    "discard",
    "discarded",
    "merge",
    "message_for",
    "proposals",
    "propose",
    "record",
    "repository",
    "settle",
]
