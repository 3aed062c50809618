"""A newer demo template (dbt/) reaches the project's copy as a merge, on real git: the copy's own
commits stay, a file both changed is a conflict that changes nothing, a user's own project is
never touched (portal/demo/template.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from portal.demo.build import ensure_demo_project
from portal.demo.template import TEMPLATE_REF, pending, take_template
from portal.project.repository import PORTAL, ProjectRepository
from portal.settings import Settings

SHIPPED = {
    "dbt_project.yml": "name: asgard\nversion: '1.0'\n",
    "models/staging/stg_orders.sql": "select 1 as order_id\n",
    "models/staging/stg_old.sql": "select 1 as old_id\n",
    "target/manifest.json": "{}",  # dbt's output in the template: never part of it
}


@pytest.fixture(autouse=True)
def _no_personal_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def _write(root: Path, files: dict[str, str | None]) -> None:
    for path, text in files.items():
        target = root / path
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Settings, Path]:
    """The settings of a demo copy made from a small template, and that template."""
    template = tmp_path / "dbt"
    _write(template, SHIPPED)
    settings = Settings.from_env({"PORTAL_DBT_PROJECT_DIR": str(tmp_path / "project")})
    ensure_demo_project(settings, say=lambda line: None, template=template)
    return settings, template


def _product(settings: Settings, path: str, text: str) -> str:
    """A change made in the portal: a commit on a proposal branch merged into main."""
    repo = ProjectRepository(settings.dbt_project_dir)
    repo.commit("product/dp_x/1", {path: text.encode()}, author=PORTAL, message=f"Write {path}")
    return repo.merge("product/dp_x/1", author=PORTAL, message="Publish")


def test_a_fresh_copy_has_nothing_to_take(copied: tuple[Settings, Path]) -> None:
    settings, template = copied
    repo = ProjectRepository(settings.dbt_project_dir)
    assert repo.portal_ref(TEMPLATE_REF) == repo.head()
    assert pending(settings, template=template) == (repo.head(), {})
    assert take_template(settings, template=template, say=lambda line: None).changed == ()
    assert not (settings.dbt_project_dir / "target" / "manifest.json").exists()


def test_the_templates_changes_are_merged_and_the_copys_own_commits_stay(
    copied: tuple[Settings, Path],
) -> None:
    settings, template = copied
    project = settings.dbt_project_dir
    _product(settings, "models/data_products/dp_x.sql", "select order_id from {{ ref('stg_orders') }}\n")
    _write(
        template,
        {
            "models/staging/stg_orders.sql": "select 1 as order_id, 2 as customer_id\n",
            "models/staging/stg_new.sql": "select 3 as new_id\n",
            "models/staging/stg_old.sql": None,
        },
    )
    (_, changes) = pending(settings, template=template) or ("", {})
    assert changes == {
        "models/staging/stg_new.sql": b"select 3 as new_id\n",
        "models/staging/stg_old.sql": None,
        "models/staging/stg_orders.sql": b"select 1 as order_id, 2 as customer_id\n",
    }
    said: list[str] = []
    taken = take_template(settings, template=template, say=said.append)
    assert taken.changed == tuple(sorted(changes)) and taken.conflicts == ()
    assert (
        project / "models/staging/stg_orders.sql"
    ).read_text() == "select 1 as order_id, 2 as customer_id\n"
    assert (project / "models/staging/stg_new.sql").exists()
    assert not (project / "models/staging/stg_old.sql").exists()
    assert (project / "models/data_products/dp_x.sql").exists()  # the portal's product stays
    assert (project / ".gitignore").exists()  # the portal's own file, not the template's to remove
    clean = subprocess.run(
        ["git", "-C", str(project), "status", "--porcelain"], capture_output=True, text=True
    )
    assert clean.stdout == ""  # the checkout is main, as committed
    assert any("stg_new.sql" in line for line in said)
    assert pending(settings, template=template) is not None
    assert pending(settings, template=template)[1] == {}  # type: ignore[index]  # taken once
    branches = ProjectRepository(project).branches("template/")
    assert branches == []  # its branch is gone


def test_a_file_both_changed_is_a_conflict_that_changes_nothing(copied: tuple[Settings, Path]) -> None:
    settings, template = copied
    repo = ProjectRepository(settings.dbt_project_dir)
    before = _product(settings, "models/staging/stg_orders.sql", "select 10 as order_id\n")
    taken_before = repo.portal_ref(TEMPLATE_REF)
    _write(template, {"models/staging/stg_orders.sql": "select 20 as order_id\n"})
    taken = take_template(settings, template=template, say=lambda line: None)
    assert taken.conflicts == ("models/staging/stg_orders.sql",) and taken.main is None
    assert repo.head() == before and repo.portal_ref(TEMPLATE_REF) == taken_before
    assert (
        settings.dbt_project_dir / "models/staging/stg_orders.sql"
    ).read_text() == "select 10 as order_id\n"


def test_a_users_own_project_is_never_the_demos_copy(tmp_path: Path) -> None:
    template = tmp_path / "dbt"
    _write(template, SHIPPED)
    own = tmp_path / "own"
    _write(own, {"dbt_project.yml": "name: shop\nversion: '1.0'\n", "models/a.sql": "select 1 as id\n"})
    ProjectRepository.ensure(own)  # made a repository by the portal, but not copied from dbt/
    settings = Settings.from_env({"PORTAL_DBT_PROJECT_DIR": str(own)})
    assert pending(settings, template=template) is None
    assert take_template(settings, template=template, say=lambda line: None).changed == ()
    assert sorted(ProjectRepository(own).files("main")) == [".gitignore", "dbt_project.yml", "models/a.sql"]


def test_a_copy_made_before_the_ref_is_recognised_by_its_first_commit_and_name(
    copied: tuple[Settings, Path],
) -> None:
    settings, template = copied
    project = settings.dbt_project_dir
    subprocess.run(["git", "-C", str(project), "update-ref", "-d", "refs/asgard/template"], check=True)
    _write(template, {"models/staging/stg_new.sql": "select 3 as new_id\n"})
    taken = take_template(settings, template=template, say=lambda line: None)
    assert (
        taken.changed == ("models/staging/stg_new.sql",) and (project / "models/staging/stg_new.sql").exists()
    )
