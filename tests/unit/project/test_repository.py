"""The project repository on real git: real repositories and bare remotes under tmp_path, no mocks."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from portal.errors import InvalidInput, NotFound
from portal.project.repository import (
    Author,
    FileChange,
    GitError,
    MergeConflict,
    NotOwnRepository,
    ProjectRepository,
    redact,
)

ALICE = Author("Alice Example", "alice@example.com")
BOB = Author("Bob Example", "bob@example.com")
BRANCH = "product/dp_x/1"
FILES = {
    "dbt_project.yml": "name: shop\nversion: '1.0'\n",
    "models/a.sql": "select 1 as id\n",
    "models/b.sql": "select 2 as id\n",
}


@pytest.fixture(autouse=True)
def _no_personal_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tester's ~/.gitconfig (signing, hooks, autocrlf) must not change what these tests see."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str, author: Author = BOB) -> str:
    """Plain git, as a person (or another clone) would run it; fails the test if git fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith("GIT_CONFIG")}
    env.update(
        LC_ALL="C",
        GIT_AUTHOR_NAME=author.name,
        GIT_AUTHOR_EMAIL=author.email,
        GIT_COMMITTER_NAME=author.name,
        GIT_COMMITTER_EMAIL=author.email,
    )
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def write_project(path: Path) -> Path:
    """A small dbt project, with dbt output (target/) that must never be committed."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / "target").mkdir()
    (path / "target" / "manifest.json").write_text("{}")
    return path


@pytest.fixture
def project(tmp_path: Path) -> ProjectRepository:
    return ProjectRepository.ensure(write_project(tmp_path / "project"))


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path


def tree_files(repo: Path, rev: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", rev).splitlines())


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}") + "\n"


def status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def clone(tmp_path: Path, bare: Path, name: str = "other") -> Path:
    git(tmp_path, "clone", "-q", str(bare), name)
    return tmp_path / name


def publish(repo: ProjectRepository, branch: str, changes: dict[str, bytes | None]) -> str:
    repo.commit(branch, changes, author=ALICE, message=f"Change {branch}")
    return repo.merge(branch, author=ALICE, message=f"Publish {branch}")


# -- ensure ------------------------------------------------------------------------------


def test_ensure_commits_a_fresh_project_as_found_and_ignores_dbt_output(project: ProjectRepository) -> None:
    assert tree_files(project.path) == {".gitignore", *FILES}
    ignored = (project.path / ".gitignore").read_text().splitlines()
    assert {"target/", "logs/", "dbt_packages/", ".user.yml"} <= set(ignored)
    assert git(project.path, "log", "--format=%an <%ae>|%s", "main") == (
        "Asgard portal <portal@asgard.invalid>|The dbt project as the portal found it"
    )
    assert git(project.path, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert status(project.path) == ""  # target/ is ignored, everything else committed


def test_ensure_is_idempotent(project: ProjectRepository) -> None:
    head, ignore = project.head(), (project.path / ".gitignore").read_text()
    again = ProjectRepository.ensure(project.path)
    assert again.head() == head
    assert git(project.path, "rev-list", "--count", "main") == "1"
    assert (project.path / ".gitignore").read_text() == ignore


def test_ensure_keeps_a_gitignore_the_project_has(tmp_path: Path) -> None:
    path = write_project(tmp_path)
    (path / ".gitignore").write_text("target/\nsecrets.yml\n")
    ProjectRepository.ensure(path)
    assert (path / ".gitignore").read_text() == "target/\nsecrets.yml\n"


def test_ensure_refuses_a_directory_inside_another_repository(tmp_path: Path) -> None:
    outer = tmp_path / "portal"
    inner = write_project(outer / "dbt")
    git(outer, "init", "-q", "-b", "main")
    git(outer, "add", "-A")
    git(outer, "commit", "-q", "-m", "the portal's source")
    before = git(outer, "rev-parse", "HEAD")
    with pytest.raises(NotOwnRepository) as refused:
        ProjectRepository.ensure(inner)
    message = str(refused.value)
    assert str(inner.resolve()) in message and f"({outer.resolve()})" in message
    assert "PORTAL_DBT_PROJECT_DIR" in message
    assert isinstance(refused.value, GitError)
    assert not (inner / ".git").exists()
    assert git(outer, "rev-parse", "HEAD") == before and status(outer) == ""


def source_repository(outer: Path) -> Path:
    """A repository like the portal's own source tree: committed, ignoring var/."""
    outer.mkdir()
    git(outer, "init", "-q", "-b", "main")
    (outer / ".gitignore").write_text("var/\n")
    git(outer, "add", "-A")
    git(outer, "commit", "-q", "-m", "the portal's source")
    return outer


def test_ensure_makes_a_repository_of_its_own_where_the_enclosing_one_ignores_it(tmp_path: Path) -> None:
    outer = source_repository(tmp_path / "portal")
    inner = write_project(outer / "var" / "dbt")
    repo = ProjectRepository.ensure(inner)
    assert git(inner, "rev-parse", "--show-toplevel") == str(inner.resolve())
    assert tree_files(inner) == {".gitignore", *FILES}
    assert git(outer, "rev-list", "--count", "HEAD") == "1" and status(outer) == ""
    repo.commit(BRANCH, {"models/c.sql": b"select 3\n"}, author=ALICE, message="Add c")
    assert git(outer, "branch", "--list") == "* main"  # the proposal went to the project's own repository


def test_a_project_whose_git_directory_vanished_never_falls_back_on_the_enclosing_one(tmp_path: Path) -> None:
    outer = source_repository(tmp_path / "portal")
    repo = ProjectRepository.ensure(write_project(outer / "var" / "dbt"))
    shutil.rmtree(repo.path / ".git")
    with pytest.raises(GitError, match="not a git repository"):
        repo.commit(BRANCH, {"models/c.sql": b"c\n"}, author=ALICE, message="Add c")
    assert git(outer, "for-each-ref", "--format=%(refname)") == "refs/heads/main"


# -- commit ------------------------------------------------------------------------------


def test_commit_leaves_the_work_tree_the_index_and_main_untouched(project: ProjectRepository) -> None:
    path = project.path
    (path / "models" / "a.sql").write_text("select 'a local edit'\n")
    (path / "notes.txt").write_text("untracked\n")
    before_status, main = status(path), project.head()
    index = hashlib.sha256((path / ".git" / "index").read_bytes()).hexdigest()

    sha = project.commit(BRANCH, {"models/c.sql": b"select 3\n"}, author=ALICE, message="Add c")

    assert hashlib.sha256((path / ".git" / "index").read_bytes()).hexdigest() == index
    assert status(path) == before_status
    assert (path / "models" / "a.sql").read_text() == "select 'a local edit'\n"
    assert not (path / "models" / "c.sql").exists()
    assert project.head() == main
    assert project.head(BRANCH) == sha
    assert git(path, "rev-list", "--count", f"main..{BRANCH}") == "1"
    assert git(path, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", BRANCH) == (
        "Alice Example <alice@example.com>|Asgard portal <portal@asgard.invalid>|Add c"
    )
    assert show(path, BRANCH, "models/c.sql") == "select 3\n"
    assert show(path, BRANCH, "models/a.sql") == FILES["models/a.sql"]  # from main, not the work tree


def test_commit_advances_an_existing_branch_and_deletes_a_file_given_none(project: ProjectRepository) -> None:
    first = project.commit(BRANCH, {"models/c.sql": b"select 3\n"}, author=ALICE, message="Add c")
    second = project.commit(BRANCH, {"models/b.sql": None}, author=BOB, message="Drop b")
    assert git(project.path, "rev-parse", f"{second}^") == first
    assert tree_files(project.path, BRANCH) == {
        ".gitignore",
        "dbt_project.yml",
        "models/a.sql",
        "models/c.sql",
    }
    assert git(project.path, "log", "-1", "--format=%an", BRANCH) == "Bob Example"


def test_commit_starts_a_branch_from_the_base_given(project: ProjectRepository) -> None:
    other = project.commit("product/dp_y/1", {"models/y.sql": b"select 'y'\n"}, author=ALICE, message="Add y")
    sha = project.commit(BRANCH, {"models/c.sql": b"c\n"}, author=ALICE, message="c", base="product/dp_y/1")
    assert git(project.path, "rev-parse", f"{sha}^") == other


def test_commit_refuses_a_change_that_changes_nothing(project: ProjectRepository) -> None:
    same = {"models/a.sql": FILES["models/a.sql"].encode()}
    with pytest.raises(InvalidInput, match=f"nothing to commit: the files are as on {BRANCH}"):
        project.commit(BRANCH, same, author=ALICE, message="No-op")
    with pytest.raises(InvalidInput, match="nothing to commit"):
        project.commit(BRANCH, {"models/missing.sql": None}, author=ALICE, message="No-op")
    assert project.head(BRANCH) is None


@pytest.mark.parametrize(
    "bad",
    [
        "/etc/passwd",
        "../outside.sql",
        "models/../../x.sql",
        ".git/config",
        "models/.GIT/x",
        "",
        "models//x.sql",
        "models/",
        "./a.sql",
    ],
)
def test_commit_refuses_a_path_outside_the_project(project: ProjectRepository, bad: str) -> None:
    with pytest.raises(InvalidInput):
        project.commit(BRANCH, {bad: b"x"}, author=ALICE, message="Bad path")
    assert project.head(BRANCH) is None


@pytest.mark.parametrize("bad", ["main", "-x", "a..b", "has space", "x.lock", ""])
def test_commit_refuses_main_and_bad_branch_names(project: ProjectRepository, bad: str) -> None:
    with pytest.raises(InvalidInput):
        project.commit(bad, {"models/c.sql": b"c"}, author=ALICE, message="Bad branch")
    assert project.branches() == ["main"]


@pytest.mark.parametrize(
    ("name", "email"), [("", "a@b"), ("Eve", ""), ("Eve\nX", "e@x"), ("Eve", "<e@x>"), ("Eve", "e\0@x")]
)
def test_an_author_git_cannot_record_is_refused(name: str, email: str) -> None:
    with pytest.raises(InvalidInput):
        Author(name, email)


def test_a_commit_on_a_stale_head_is_refused_and_loses_nothing(project: ProjectRepository) -> None:
    seen = project.commit(BRANCH, {"models/c.sql": b"c1\n"}, author=ALICE, message="c1")
    elsewhere = ProjectRepository(project.path)  # another portal process on the same checkout
    newer = elsewhere.commit(BRANCH, {"models/c.sql": b"c2\n"}, author=BOB, message="c2")
    with pytest.raises(GitError, match="moved while this change was being saved"):
        project.commit(BRANCH, {"models/c.sql": b"c3\n"}, author=ALICE, message="c3", expected_head=seen)
    assert project.head(BRANCH) == newer
    assert show(project.path, BRANCH, "models/c.sql") == "c2\n"


def test_racing_commits_lose_none(project: ProjectRepository) -> None:
    """Eight writers on one branch at once: each either lands or is told to retry, and after the
    retries every one of the eight files is on the branch, one commit each."""
    start = threading.Barrier(8)
    landed: list[str] = []
    refusals: list[str] = []

    def write(n: int) -> None:
        repo = ProjectRepository(project.path)
        start.wait()
        for _ in range(50):
            try:
                landed.append(
                    repo.commit(BRANCH, {f"models/w{n}.sql": b"x\n"}, author=ALICE, message=f"w{n}")
                )
                return
            except GitError as error:
                refusals.append(str(error))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(landed) == 8
    assert tree_files(project.path, BRANCH) >= {f"models/w{n}.sql" for n in range(8)}
    assert git(project.path, "rev-list", "--count", f"main..{BRANCH}") == "8"
    assert all("try again" in refusal for refusal in refusals)


def test_branches_lists_the_branches_under_a_prefix(project: ProjectRepository) -> None:
    for branch in ("product/b/1", "product/a/1", "other/x"):
        project.commit(branch, {"models/c.sql": branch.encode()}, author=ALICE, message=branch)
    assert project.branches("product/") == ["product/a/1", "product/b/1"]
    assert project.branches() == ["main", "other/x", "product/a/1", "product/b/1"]
    assert project.head("product/none") is None


# -- diff --------------------------------------------------------------------------------


def test_diff_shows_what_the_branch_added_modified_and_deleted(project: ProjectRepository) -> None:
    project.commit(
        BRANCH,
        {"models/a.sql": b"select 10 as id\n", "models/b.sql": None, "models/c.sql": b"select \xff 3\n"},
        author=ALICE,
        message="Change a, drop b, add c",
    )
    # main moves on meanwhile: what another proposal did is not this branch's change
    publish(project, "product/other/1", {"models/z.sql": b"select 'z'\n"})
    assert project.diff(BRANCH) == [
        FileChange("models/a.sql", "modified", "select 1 as id\n", "select 10 as id\n"),
        FileChange("models/b.sql", "deleted", "select 2 as id\n", None),
        FileChange("models/c.sql", "added", None, "select \ufffd 3\n"),
    ]


def test_diff_of_a_missing_branch_says_so(project: ProjectRepository) -> None:
    with pytest.raises(NotFound, match="no branch 'product/none'"):
        project.diff("product/none")


# -- merge -------------------------------------------------------------------------------


def test_merge_fast_forwards_and_brings_the_served_checkout_along(project: ProjectRepository) -> None:
    path = project.path
    (path / "scratch.txt").write_text("the operator's own\n")
    tip = project.commit(
        BRANCH, {"models/c.sql": b"select 3\n", "models/b.sql": None}, author=ALICE, message="c"
    )
    assert project.merge(BRANCH, author=ALICE, message="Publish") == tip
    assert project.head() == tip
    assert (path / "models" / "c.sql").read_text() == "select 3\n"
    assert not (path / "models" / "b.sql").exists()
    assert (path / "scratch.txt").read_text() == "the operator's own\n"
    assert status(path) == "?? scratch.txt"  # the index matches main: nothing staged, nothing stale


def test_merge_makes_a_merge_commit_when_main_moved_on(project: ProjectRepository) -> None:
    path = project.path
    tip = project.commit(BRANCH, {"models/c.sql": b"select 3\n"}, author=ALICE, message="c")
    moved = publish(project, "product/dp_y/1", {"models/y.sql": b"select 'y'\n"})
    merged = project.merge(BRANCH, author=ALICE, message=f"Publish {BRANCH}")
    assert (
        git(path, "log", "-1", "--format=%P|%an|%s", merged)
        == f"{moved} {tip}|Alice Example|Publish {BRANCH}"
    )
    assert {"models/c.sql", "models/y.sql"} <= tree_files(path)
    assert (path / "models" / "c.sql").exists() and (path / "models" / "y.sql").exists()
    assert status(path) == ""


def test_merging_a_branch_twice_changes_nothing(project: ProjectRepository) -> None:
    merged = publish(project, BRANCH, {"models/c.sql": b"c\n"})
    assert project.merge(BRANCH, author=ALICE, message="Again") == merged
    assert git(project.path, "rev-list", "--count", "main") == "2"


def test_a_merge_conflict_names_the_files_and_leaves_main_as_it_was(project: ProjectRepository) -> None:
    path = project.path
    project.commit(BRANCH, {"models/a.sql": b"select 'mine'\n"}, author=ALICE, message="mine")
    before = publish(project, "product/dp_y/1", {"models/a.sql": b"select 'theirs'\n"})
    with pytest.raises(MergeConflict) as conflict:
        project.merge(BRANCH, author=ALICE, message="Publish")
    assert conflict.value.files == ["models/a.sql"]
    assert "models/a.sql" in str(conflict.value) and BRANCH in str(conflict.value)
    assert project.head() == before
    assert (path / "models" / "a.sql").read_text() == "select 'theirs'\n"
    assert status(path) == ""


def test_merge_accepts_files_the_portal_already_wrote_as_the_branch_has_them(
    project: ProjectRepository,
) -> None:
    path = project.path
    changes = {"models/a.sql": b"select 10 as id\n", "models/c.sql": b"select 3\n"}
    project.commit(BRANCH, changes, author=ALICE, message="c")
    for name, content in changes.items():  # written for the build, before publishing
        (path / name).write_bytes(content)
    project.merge(BRANCH, author=ALICE, message="Publish")
    assert status(path) == ""
    assert (path / "models" / "c.sql").read_bytes() == b"select 3\n"


def test_merge_refuses_to_overwrite_a_different_local_edit_and_keeps_it(project: ProjectRepository) -> None:
    path = project.path
    project.commit(
        BRANCH, {"models/a.sql": b"select 10\n", "models/c.sql": b"c\n"}, author=ALICE, message="a"
    )
    (path / "models" / "a.sql").write_text("select 'hand edit'\n")
    before = project.head()
    with pytest.raises(GitError, match=r"local changes to models/a\.sql .* was not moved"):
        project.merge(BRANCH, author=ALICE, message="Publish")
    assert project.head() == before
    assert (path / "models" / "a.sql").read_text() == "select 'hand edit'\n"
    assert not (path / "models" / "c.sql").exists()


def test_merge_refuses_when_the_checkout_is_not_on_main(project: ProjectRepository) -> None:
    project.commit(BRANCH, {"models/c.sql": b"c\n"}, author=ALICE, message="c")
    git(project.path, "switch", "-q", "-c", "elsewhere")
    with pytest.raises(GitError, match="is on elsewhere, not on main"):
        project.merge(BRANCH, author=ALICE, message="Publish")
    assert project.head() == git(project.path, "rev-parse", "elsewhere")


# -- push --------------------------------------------------------------------------------


def test_ensure_pushes_main_to_an_empty_remote(tmp_path: Path, bare: Path) -> None:
    repo = ProjectRepository.ensure(write_project(tmp_path / "p"), remote=str(bare))
    assert git(bare, "rev-parse", "main") == repo.head()
    assert ProjectRepository.ensure(repo.path, remote=str(bare)).head() == repo.head()  # and again


def test_push_without_a_remote_pushes_nothing(project: ProjectRepository) -> None:
    result = project.push()
    assert (result.pushed, result.reason) == (False, "no remote")


def test_push_sends_main_to_the_remote(tmp_path: Path, bare: Path) -> None:
    repo = ProjectRepository.ensure(write_project(tmp_path / "p"), remote=str(bare))
    merged = publish(repo, BRANCH, {"models/c.sql": b"c\n"})
    result = repo.push()
    assert (result.pushed, result.head, result.integrated) == (True, merged, False)
    assert git(bare, "rev-parse", "main") == merged
    assert repo.push().reason == "the remote already had main"


def test_push_merges_a_remote_that_moved_on_and_pushes_both(tmp_path: Path, bare: Path) -> None:
    repo = ProjectRepository.ensure(write_project(tmp_path / "p"), remote=str(bare))
    other = clone(tmp_path, bare)
    (other / "models" / "theirs.sql").write_text("select 'theirs'\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "Theirs")
    git(other, "push", "-q", "origin", "main")
    theirs = git(other, "rev-parse", "HEAD")
    ours = publish(repo, BRANCH, {"models/c.sql": b"c\n"})

    result = repo.push()

    assert result.pushed and result.integrated
    assert git(bare, "rev-parse", "main") == repo.head() == result.head
    git(bare, "merge-base", "--is-ancestor", ours, "main")
    git(bare, "merge-base", "--is-ancestor", theirs, "main")
    assert (repo.path / "models" / "theirs.sql").read_text() == "select 'theirs'\n"
    assert status(repo.path) == ""


def test_a_conflicting_remote_change_is_not_pushed_and_nothing_is_lost(tmp_path: Path, bare: Path) -> None:
    repo = ProjectRepository.ensure(write_project(tmp_path / "p"), remote=str(bare))
    other = clone(tmp_path, bare)
    (other / "models" / "a.sql").write_text("select 'theirs'\n")
    git(other, "commit", "-q", "-am", "Theirs")
    git(other, "push", "-q", "origin", "main")
    theirs = git(other, "rev-parse", "HEAD")
    ours = publish(repo, BRANCH, {"models/a.sql": b"select 'ours'\n"})

    with pytest.raises(MergeConflict) as conflict:
        repo.push()

    assert conflict.value.files == ["models/a.sql"]
    assert "Nothing was lost" in str(conflict.value)
    assert repo.head() == ours and repo.head(BRANCH) == ours
    assert (repo.path / "models" / "a.sql").read_text() == "select 'ours'\n"
    assert git(bare, "rev-parse", "main") == theirs


def test_ensure_will_not_start_a_second_history_beside_a_populated_remote(tmp_path: Path, bare: Path) -> None:
    seed = ProjectRepository.ensure(write_project(tmp_path / "seed"), remote=str(bare))
    fresh = write_project(tmp_path / "fresh")
    with pytest.raises(GitError, match="Clone the remote into that directory instead"):
        ProjectRepository.ensure(fresh, remote=str(bare))
    assert not (fresh / ".git").exists() and not (fresh / ".gitignore").exists()
    assert git(bare, "rev-parse", "main") == seed.head()


def test_ensure_refuses_a_remote_other_than_the_one_configured(
    project: ProjectRepository, tmp_path: Path, bare: Path
) -> None:
    git(project.path, "remote", "add", "origin", str(tmp_path / "elsewhere.git"))
    with pytest.raises(GitError, match="already has a remote 'origin'"):
        ProjectRepository.ensure(project.path, remote=str(bare))


def test_a_password_in_the_remote_url_never_reaches_an_error(
    project: ProjectRepository, tmp_path: Path
) -> None:
    url = "https://user:secret@127.0.0.1:9/x.git"
    with pytest.raises(GitError) as refused:
        ProjectRepository(project.path, remote=url).push()
    assert "secret" not in str(refused.value)
    assert "https://user:***@127.0.0.1:9/x.git" in str(refused.value)
    with pytest.raises(GitError) as refused:
        ProjectRepository.ensure(write_project(tmp_path / "q"), remote=url)
    assert "secret" not in str(refused.value) and "user:***@" in str(refused.value)
    assert redact("ssh://git@host/x and https://u:p@h/x") == "ssh://git@host/x and https://u:***@h/x"


# -- delete_branch -----------------------------------------------------------------------


def test_delete_branch_removes_it_here_and_on_the_remote(tmp_path: Path, bare: Path) -> None:
    repo = ProjectRepository.ensure(write_project(tmp_path / "p"), remote=str(bare))
    repo.commit(BRANCH, {"models/c.sql": b"c\n"}, author=ALICE, message="c")
    git(repo.path, "push", "-q", "origin", BRANCH)  # shared for review, say
    repo.commit("product/local/1", {"models/d.sql": b"d\n"}, author=ALICE, message="d")
    repo.delete_branch(BRANCH)
    repo.delete_branch("product/local/1")
    repo.delete_branch("product/local/1")  # already gone: no error, so a discard can be retried
    assert repo.branches() == ["main"]
    assert git(bare, "branch", "--list") == "* main"
