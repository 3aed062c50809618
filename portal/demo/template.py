"""The demo project the portal ships (dbt/) and the copy it serves (var/project by default).

The copy is a git repository of its own, where products are commits. When the portal's own dbt/
changes (a newer portal: a model added, a test fixed), the copy takes the change the way it takes
any change, as a merge: a commit of the template's files on top of the template commit the copy
last took (the ref `refs/asgard/template`), merged into main. Products created and edits made in
the portal stay; a file that both the template and the portal changed is a conflict, which leaves
main as it was and names the files.

Only the demo's own copy is updated: a project without that ref is the user's own (brought with
PORTAL_DBT_PROJECT_DIR), unless it is a copy made before the ref existed, which is recognised by
its first commit ("the project as the portal found it") and the demo project's name.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from portal.errors import PortalError
from portal.project.repository import INITIAL_MESSAGE, PORTAL, MergeConflict, ProjectRepository
from portal.settings import ROOT, Settings

Say = Callable[[str], None]
# The demo project as the portal ships it.
DEMO_TEMPLATE = ROOT / "dbt"
# dbt's own output in the template directory: never copied, never part of the template.
TEMPLATE_OUTPUT = ("target", "logs", "dbt_packages", ".user.yml")
TEMPLATE_REF = "template"  # refs/asgard/template: the template commit the copy last took
# Written by the portal into the copy (ProjectRepository's .gitignore), not part of the template.
PORTAL_WRITTEN = frozenset({".gitignore"})


class Pending(NamedTuple):
    """What the template changed since the copy took it."""

    taken: str  # the template commit the copy last took
    changes: dict[str, bytes | None]  # path -> its new bytes (None: removed)


@dataclass(frozen=True)
class TemplateUpdate:
    """What taking the template did: the files it changed, and main after (None: nothing merged)."""

    changed: tuple[str, ...]
    main: str | None = None
    conflicts: tuple[str, ...] = ()  # files both changed: nothing was merged


def copy_template(project: Path, *, template: Path = DEMO_TEMPLATE) -> None:
    shutil.copytree(template, project, ignore=shutil.ignore_patterns(*TEMPLATE_OUTPUT), dirs_exist_ok=True)


def mark_taken(repo: ProjectRepository) -> None:
    """Record main's head as the template commit the copy took (right after copying it)."""
    head = repo.head()
    assert head is not None  # ProjectRepository.ensure made main
    repo.move_portal_ref(TEMPLATE_REF, head, repo.portal_ref(TEMPLATE_REF))


def template_files(template: Path = DEMO_TEMPLATE) -> dict[str, bytes]:
    """The template's files, by path relative to it (POSIX), without dbt's output."""
    found = {}
    for path in sorted(template.rglob("*")):
        relative = path.relative_to(template)
        if path.is_file() and not any(part in TEMPLATE_OUTPUT for part in relative.parts):
            found[relative.as_posix()] = path.read_bytes()
    return found


def _blob_sha(content: bytes) -> str:
    """The sha git gives a file of these bytes (so no file is written to compare)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _taken(repo: ProjectRepository, template: Path) -> str | None:
    """The template commit the copy last took; None when the project is not the demo's copy."""
    taken = repo.portal_ref(TEMPLATE_REF)
    if taken is not None:
        return taken
    root = repo.root()
    if root is None or root[1] != INITIAL_MESSAGE:
        return None
    # A copy made before the ref: the demo's only if it bears the demo project's name.
    try:
        ours = yaml.safe_load((repo.path / "dbt_project.yml").read_text(encoding="utf-8"))
        shipped = yaml.safe_load((template / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    same = isinstance(ours, dict) and isinstance(shipped, dict) and ours.get("name") == shipped.get("name")
    return root[0] if same else None


def pending(settings: Settings, *, template: Path = DEMO_TEMPLATE) -> Pending | None:
    """What the template changed since the copy took it; None when the project is not the demo's
    copy."""
    project = settings.dbt_project_dir
    if not (project / ".git").exists():
        return None
    repo = ProjectRepository(project)
    taken = _taken(repo, template)
    if taken is None:
        return None
    before = {path: sha for path, sha in repo.files(taken).items() if path not in PORTAL_WRITTEN}
    now = template_files(template)
    changes: dict[str, bytes | None] = {
        path: content for path, content in now.items() if before.get(path) != _blob_sha(content)
    }
    changes.update({path: None for path in before if path not in now})
    return Pending(taken, changes)


def take_template(settings: Settings, *, template: Path = DEMO_TEMPLATE, say: Say = print) -> TemplateUpdate:
    """Merge what the template changed since the copy took it into the copy's main (see the
    module docstring). The caller holds the project lock and rebuilds afterwards."""
    found = pending(settings, template=template)
    if found is None or not found.changes:
        return TemplateUpdate(changed=())
    taken, changes = found
    changed = tuple(sorted(changes))
    repo = ProjectRepository.ensure(settings.dbt_project_dir, remote=settings.git_remote or None)
    recorded = repo.portal_ref(TEMPLATE_REF)  # None for a copy made before the ref
    branch = f"template/{taken[:12]}"
    repo.delete_branch(branch)  # one a crashed update left behind
    commit = repo.commit(
        branch,
        changes,
        author=PORTAL,
        message="The demo project as the portal now ships it (dbt/ in the portal's repository)",
        base=taken,
    )
    try:
        main = repo.merge(branch, author=PORTAL, message="Take the new version of the demo project")
    except MergeConflict as conflict:
        return TemplateUpdate(changed=changed, conflicts=tuple(conflict.files))
    finally:
        repo.delete_branch(branch)
    repo.move_portal_ref(TEMPLATE_REF, commit, recorded)
    try:
        repo.push()  # a remote that cannot be reached gets it with the next push
    except PortalError as exc:
        say(f"Main was not pushed to its remote: {exc}")
    say(f"Took the demo project's new version into {settings.dbt_project_dir}: {', '.join(changed)}")
    return TemplateUpdate(changed=changed, main=main)


__all__ = [
    "DEMO_TEMPLATE",
    "Pending",
    "TemplateUpdate",
    "copy_template",
    "mark_taken",
    "pending",
    "take_template",
    "template_files",
]
