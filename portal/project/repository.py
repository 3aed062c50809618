"""The dbt project's own git repository: the history of every data product, one commit a change.

Products are code under review: creating, editing, deprecating or discarding a product is a
commit authored by the person who asked, on a branch per proposal; publishing merges the branch
into the project's main branch, and `push` sends main to the operator's remote. So git, not a
table of ours, is the product history: `git log` says who changed what and when, a reviewer
reads a diff, and an operator can revert with the tools they already have.

Three rules keep that safe while the same checkout serves dbt:

- The portal commits only to a repository of its own (`ensure`): never to one it merely sits
  inside, such as the portal's own source repository. Every command then names the repository
  explicitly (GIT_DIR and GIT_WORK_TREE), so git never goes looking in a parent directory, even
  if the project's `.git` were removed later.
- Proposals are written with plumbing and a temporary index (`commit`): the served checkout is
  never switched, and neither its files nor its index are touched, so a build running from it
  never sees a half-made proposal. Merges are computed without a work tree too
  (`git merge-tree --write-tree`); only main's new files are then written into the checkout,
  and only where that loses nothing (`_advance_main`).
- Every ref moves by compare-and-swap (`update-ref <ref> <new> <old>`): two writers that race
  cannot lose a commit; the one that lost is told to retry.

The git CLI is run with an environment that fixes what it reads (no system config, no prompts,
the C locale, the portal as committer), so its answers do not depend on the caller's shell.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from portal.errors import Conflict, InvalidInput, NotFound, Unavailable

LOCAL_TIMEOUT_S = 60.0  # a local command is quick; this only stops a wedged one
NETWORK_TIMEOUT_S = 300.0  # ls-remote, fetch and push wait on a remote
REMOTE = "origin"
INITIAL_MESSAGE = "The dbt project as the portal found it"
# dbt's own output, which is rebuilt on every run and has no place in the product history
DBT_IGNORES = ("target/", "logs/", "dbt_packages/", ".user.yml")

_ABSENT = "000000"  # the mode git gives the missing side of an added or deleted file
_GITLINK = "160000"  # a submodule: not a file the portal writes or shows
_SYMLINK = "120000"
# How update-ref says another writer got there first (or holds the ref's lock right now).
_LOST_RACE = ("but expected", "reference already exists", "unable to resolve reference", "File exists")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PASSWORD_IN_URL = re.compile(r"(//[^/@:\s]+):[^/@\s]*@")
# Variables that would point git at another repository, index or object store than the one
# named here, stop it from seeing an enclosing repository, or date a commit from the caller's
# shell. Credential settings (GIT_ASKPASS, GIT_SSH_COMMAND, GIT_CONFIG_COUNT...) pass through.
_DROPPED = re.compile(
    r"GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|COMMON_DIR|NAMESPACE"
    r"|CEILING_DIRECTORIES|PREFIX|AUTHOR_NAME|AUTHOR_EMAIL|AUTHOR_DATE|COMMITTER_DATE)"
)


def redact(text: str) -> str:
    """`text` with any password in a URL replaced: `https://user:***@host/...`."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", text)


class GitError(Unavailable):
    """git refused to do something to the project repository; the message says what and how to
    fix it. A password in a remote's URL never reaches the message."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class NotOwnRepository(GitError):
    """The project directory lies inside another repository (e.g. the portal's own source)."""


class MergeConflict(Conflict):
    """Two lines of history changed the same files differently; `files` names them."""

    def __init__(self, message: str, files: Sequence[str]) -> None:
        super().__init__(message, problems=list(files))
        self.files = list(files)


@dataclass(frozen=True)
class Author:
    """Who a commit is by: the person who asked for the change (the portal is the committer)."""

    name: str
    email: str

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("email", self.email)):
            if not value.strip():
                raise InvalidInput(f"A commit's author needs a {what}, and this one is empty.")
            if any(c in value for c in "\n\r\0<>"):
                raise InvalidInput(
                    f"The author's {what} {value!r} holds a line break, NUL, '<' or '>', which git "
                    f"cannot record: give a plain {what}."
                )

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


PORTAL = Author("Asgard portal", "portal@asgard.invalid")


@dataclass(frozen=True)
class FileChange:
    """One file a proposal changes, for the review page: its text before and after."""

    path: str
    status: Literal["added", "modified", "deleted"]
    before: str | None
    after: str | None


@dataclass(frozen=True)
class PushResult:
    pushed: bool
    reason: str
    head: str | None = None  # main's sha as the remote now has it
    integrated: bool = False  # the remote had moved on, and its commits were merged in first


@dataclass(frozen=True)
class _Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace").strip()

    @property
    def why(self) -> str:
        """git's own reason: the first fatal/error line, else the first line it printed."""
        lines = [line.strip() for line in self.err.splitlines() if line.strip()]
        for line in lines:
            for prefix in ("fatal: ", "error: "):
                if line.startswith(prefix):
                    return line.removeprefix(prefix).rstrip(".")
        return lines[0].rstrip(".") if lines else f"it exited with status {self.code}"


@dataclass(frozen=True)
class _Entry:
    """One line of `git diff-tree --raw`: a path and its mode and blob on either side."""

    path: str
    status: str
    old_mode: str
    old_sha: str
    new_mode: str
    new_sha: str


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not _DROPPED.fullmatch(k)}
    environ.update(
        GIT_TERMINAL_PROMPT="0",  # a missing credential fails; it never waits on a prompt
        GIT_CONFIG_NOSYSTEM="1",
        LC_ALL="C",  # we read git's messages: keep them in one language
        GIT_COMMITTER_NAME=PORTAL.name,
        GIT_COMMITTER_EMAIL=PORTAL.email,
        GIT_LITERAL_PATHSPECS="1",  # a product file named `*.sql` is a name, not a pattern
    )
    environ.update(extra)
    return environ


def _run(args: Sequence[str], cwd: Path, extra: Mapping[str, str], stdin: bytes, timeout: float) -> _Result:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,  # an empty input also keeps git from reading the portal's stdin
            env=_environment(extra),
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError as error:
        raise GitError("git is not installed where the portal runs: install git 2.38 or later.") from error
    except subprocess.TimeoutExpired as error:
        raise GitError(
            f"git {args[0]} took longer than {timeout:.0f} s and was stopped: check that the "
            "remote is reachable and the disk is not full, then try again."
        ) from error
    return _Result(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


@lru_cache(maxsize=1024)
def _branch_name(name: str) -> str:
    """`name` if git accepts it as a branch name, else InvalidInput saying why."""
    if not name or name.startswith("-"):
        raise InvalidInput(f"{name!r} is not a valid branch name: it is empty or starts with '-'.")
    # check-ref-format needs no repository: run it where none can be found or changed
    result = _run(
        ["check-ref-format", "--branch", name], Path(tempfile.gettempdir()), {}, b"", LOCAL_TIMEOUT_S
    )
    if result.code != 0 or result.text != name:
        raise InvalidInput(
            f"{name!r} is not a valid git branch name (no spaces, '..', '~', '^', ':', '\\' or a "
            "trailing '.lock'): choose another."
        )
    return name


def _clean_path(path: str) -> str:
    """A repository-relative POSIX path that stays inside the work tree, else InvalidInput."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(not p for p in parts):
        raise InvalidInput(
            f"{path!r} is not a file path in the project: give a relative path like models/x.sql."
        )
    if any(p in (".", "..") for p in parts):
        raise InvalidInput(f"{path!r} has a '.' or '..' part: give the path inside the project plainly.")
    if any(p.lower() == ".git" for p in parts):
        raise InvalidInput(f"{path!r} names git's own directory (.git), which the portal never writes.")
    if any(ord(c) < 32 for c in path):
        raise InvalidInput(f"{path!r} holds a control character: rename the file.")
    return path


def _local_path(remote: str) -> bool:
    """Whether git reads `remote` as a path here rather than a URL or an scp-like `host:path`."""
    if "://" in remote:
        return False
    colon, slash = remote.find(":"), remote.find("/")
    return colon == -1 or (slash != -1 and slash < colon)


def _remote_location(remote: str) -> str:
    # A local remote is kept absolute, so it means the same whatever the portal's working directory.
    return str(Path(remote).expanduser().resolve()) if _local_path(remote) else remote


def _same_remote(a: str, b: str) -> bool:
    if _local_path(a) and _local_path(b):
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    return a.rstrip("/") == b.rstrip("/")


def _clean_message(message: str) -> bytes:
    if not message.strip():
        raise InvalidInput("A commit needs a message saying what changed and why, and this one is empty.")
    return message.strip().encode() + b"\n"


class ProjectRepository:
    """The git repository of the dbt project at `path`, with main as the branch it serves.

    Construct it with `ensure`, which checks (or makes) the repository; the constructor alone
    trusts that this was done.
    """

    def __init__(self, path: Path, *, remote: str | None = None, main: str = "main") -> None:
        self.path = Path(path).expanduser().resolve()
        self.remote = _remote_location(remote) if remote else None
        self.main = _branch_name(main)

    # -- the repository itself -------------------------------------------------------------

    @classmethod
    def ensure(cls, path: Path, *, remote: str | None = None, main: str = "main") -> ProjectRepository:
        """The repository at `path`, made if the directory is not one yet (an initial commit of
        the project as found), and joined to `remote` (pushing main to it if it is empty)."""
        repo = cls(path, remote=remote, main=main)
        if not repo.path.is_dir():
            raise GitError(
                f"There is no directory at {repo.path} to hold the dbt project: create it, or set "
                "PORTAL_DBT_PROJECT_DIR to the project's directory."
            )
        top = repo._toplevel()
        if top == repo.path:
            if repo.head() is None:
                raise GitError(
                    f"The project repository at {repo.path} has no branch {main!r}, the one the "
                    f"portal serves: create it (`git -C {repo.path} branch {main} <commit>`) or "
                    "configure the branch the project uses."
                )
            if repo.remote:
                repo._join_remote()
            return repo
        if top is not None and not repo._ignored_by(top):
            raise NotOwnRepository(
                f"The dbt project at {repo.path} lies inside another git repository ({top}), and the "
                "portal commits only to a project repository of its own. Copy the project out to a "
                "directory of its own (e.g. under var/, which the portal's repository ignores), or "
                "set PORTAL_DBT_PROJECT_DIR to one."
            )
        if repo.remote:
            repo._refuse_populated_remote()  # before anything is written here
        repo._initialise()
        if repo.remote:
            repo._join_remote()
        return repo

    def _git(
        self,
        *args: str,
        stdin: bytes = b"",
        env: Mapping[str, str] | None = None,
        timeout: float = LOCAL_TIMEOUT_S,
        discover: bool = False,
    ) -> _Result:
        # Naming the repository means git never falls back on a parent directory's repository;
        # only the look that decides whether there is one here (`discover`) searches upward.
        extra = {} if discover else {"GIT_DIR": str(self.path / ".git"), "GIT_WORK_TREE": str(self.path)}
        return _run(args, self.path, {**extra, **(env or {})}, stdin, timeout)

    def _ok(self, result: _Result, action: str, fix: str = "") -> _Result:
        if result.code != 0:
            fix = fix or f"Check the repository with `git -C {self.path} status` and try again."
            raise GitError(
                f"git could not {action} in the project repository at {self.path}: {result.why}. {fix}"
            )
        return result

    def _toplevel(self) -> Path | None:
        result = self._git("rev-parse", "--show-toplevel", discover=True)
        if result.code != 0:
            if "not a git repository" in result.err:
                return None
            self._ok(result, "tell which repository holds the project")
        return Path(result.text).resolve()

    def _ignored_by(self, top: Path) -> bool:
        """Whether the enclosing repository at `top` ignores the project and tracks none of it:
        a repository of the project's own can then live there without the two ever meeting."""
        outer = {"GIT_DIR": str(top / ".git"), "GIT_WORK_TREE": str(top)}
        # check-ignore takes no pathspec magic, GIT_LITERAL_PATHSPECS included; a path is all it reads
        ignored = _run(
            ["check-ignore", "-q", "--", str(self.path)],
            top,
            {**outer, "GIT_LITERAL_PATHSPECS": "0"},
            b"",
            LOCAL_TIMEOUT_S,
        )
        tracked = _run(["ls-files", "-z", "--", str(self.path)], top, outer, b"", LOCAL_TIMEOUT_S)
        return ignored.code == 0 and tracked.code == 0 and not tracked.out

    def _initialise(self) -> None:
        dot_git, ignore = self.path / ".git", self.path / ".gitignore"
        wrote_ignore = not ignore.exists()
        self._ok(self._git("init", "-q", "-b", self.main, discover=True), "create a repository")
        try:
            if wrote_ignore:
                ignore.write_text(
                    "# dbt's own output: rebuilt on every run, never committed\n"
                    + "\n".join(DBT_IGNORES)
                    + "\n"
                )
            # The repository's own index, this once: the checkout must end clean, as committed.
            self._ok(self._git("add", "-A"), "add the project's files")
            tree = self._ok(self._git("write-tree"), "record the project's files").text
            sha = self._commit_tree(tree, [], PORTAL, _clean_message(INITIAL_MESSAGE))
            self._swap(self.main, sha, None)
        except (GitError, OSError):
            # Leave the directory as it was found, so that trying again starts afresh.
            shutil.rmtree(dot_git, ignore_errors=True)
            if wrote_ignore:
                ignore.unlink(missing_ok=True)
            raise

    def _ensure_origin(self) -> None:
        assert self.remote
        # The configured value as written (get-url would apply url.insteadOf rewrites).
        current = self._git("config", "--get", f"remote.{REMOTE}.url")
        if current.code == 0:
            if not _same_remote(current.text, self.remote):
                raise GitError(
                    f"The project repository at {self.path} already has a remote {REMOTE!r} at "
                    f"{current.text}, not at {self.remote} as configured: correct the setting, or "
                    f"point the remote at it with `git -C {self.path} remote set-url {REMOTE} <url>`."
                )
            return
        self._ok(self._git("remote", "add", REMOTE, self.remote), f"add the remote {self.remote}")

    def _remote_main(self, where: str) -> str | None:
        result = self._git(
            "ls-remote", where, f"refs/heads/{self.main}", timeout=NETWORK_TIMEOUT_S, discover=where != REMOTE
        )
        self._ok(
            result,
            f"read the remote {self.remote}",
            "Check that the remote exists and that the portal's credentials (ssh agent, credential "
            "helper, GIT_ASKPASS) may read it.",
        )
        return result.text.split()[0] if result.text else None

    def _refuse_populated_remote(self) -> None:
        assert self.remote
        if self._remote_main(self.remote) is not None:
            raise GitError(
                f"The remote {self.remote} already holds a {self.main} branch, and {self.path} is not "
                "a repository yet: the portal will not merge two unrelated histories. Clone the remote "
                f"into that directory instead (`git clone {self.remote} {self.path}`)."
            )

    def _join_remote(self) -> None:
        self._ensure_origin()
        if self._remote_main(REMOTE) is None and (pushed := self._push()).code != 0:
            self._push_failed(pushed)
        # A remote that moved on is brought in by the next push(), which merges or says why not.

    # -- reading ---------------------------------------------------------------------------

    def head(self, branch: str | None = None) -> str | None:
        """The sha `branch` (main if none) points at; None if there is no such branch."""
        name = _branch_name(branch) if branch is not None else self.main
        result = self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}^{{commit}}")
        if result.code == 1:  # no such branch; anything else is the repository failing
            return None
        return self._ok(result, f"read the branch {name}").text

    def branches(self, prefix: str = "") -> list[str]:
        result = self._ok(
            self._git("for-each-ref", "--format=%(refname)", "refs/heads/"), "list the branches"
        )
        names = (line.removeprefix("refs/heads/") for line in result.text.splitlines())
        return sorted(name for name in names if name.startswith(prefix))

    def diff(self, branch: str, *, base: str | None = None) -> list[FileChange]:
        """What `branch` changes since it left main (or `base`): each file, before and after."""
        tip = self._require_branch(branch)
        against = self._revision(base) if base is not None else self._require_main()
        fork = self._git("merge-base", against, tip)
        self._ok(
            fork,
            f"find where {branch} left {base or self.main}",
            "The two share no history: discard the branch.",
        )
        return self._changes(fork.text, tip)

    def changes(self, old: str, new: str) -> list[FileChange]:
        """What commit `new` changes against commit `old` (full shas): each file, before and after.
        A proposal's own change is its base and its commit, whether or not its branch is still there."""
        return self._changes(self._revision(old), self._revision(new))

    def read(self, revision: str, path: str) -> str | None:
        """The text of `path` at commit `revision`, or None when it has no such file."""
        shown = self._git("show", f"{self._revision(revision)}:{_clean_path(path)}")
        return shown.out.decode("utf-8", "replace") if shown.code == 0 else None

    def files(self, revision: str) -> dict[str, str]:
        """Every file of commit `revision` (a full sha or a branch): path -> its blob's sha."""
        listed = self._ok(self._git("ls-tree", "-r", "-z", self._revision(revision)), "list a commit's files")
        entries = (entry.split(b"\t", 1) for entry in listed.out.split(b"\0") if entry)
        return {
            path.decode("utf-8", "surrogateescape"): head.split()[2].decode()
            for head, path in entries
            if head.split()[1] == b"blob"
        }

    def root(self) -> tuple[str, str] | None:
        """Main's first commit and its message; None when main has more than one root."""
        log = self._git("log", "--max-parents=0", "-z", "--format=%H%n%B", self._require_main())
        roots = [entry for entry in self._ok(log, "read").out.split(b"\0") if entry.strip()]
        if len(roots) != 1:
            return None
        sha, _, message = roots[0].decode("utf-8", "replace").partition("\n")
        return sha, message.strip()

    def portal_ref(self, name: str) -> str | None:
        """The commit the portal's own ref `refs/asgard/<name>` points at (None: no such ref)."""
        result = self._git("rev-parse", "--verify", "--quiet", f"refs/asgard/{name}^{{commit}}")
        return result.text if result.code == 0 else None

    def move_portal_ref(self, name: str, new: str, old: str | None) -> None:
        """Point `refs/asgard/<name>` (no branch, no tag) at `new` if still at `old` (None: absent)."""
        moved = self._git("update-ref", "-m", "asgard portal", f"refs/asgard/{name}", new, old or "")
        self._ok(moved, f"move refs/asgard/{name}", "Another process moved it meanwhile: try again.")

    def _changes(self, old: str, new: str) -> list[FileChange]:
        entries = [e for e in self._raw_diff(old, new) if _GITLINK not in (e.old_mode, e.new_mode)]
        blobs = self._blobs(sha for e in entries for sha in (e.old_sha, e.new_sha))
        statuses: dict[str, Literal["added", "modified", "deleted"]] = {"A": "added", "D": "deleted"}

        def text(sha: str) -> str | None:
            return blobs[sha].decode("utf-8", "replace") if sha in blobs else None

        return [
            FileChange(e.path, statuses.get(e.status, "modified"), text(e.old_sha), text(e.new_sha))
            for e in entries
        ]

    def _require_main(self) -> str:
        sha = self.head()
        if sha is None:
            raise GitError(
                f"The project repository at {self.path} has no branch {self.main!r}: run ensure() first."
            )
        return sha

    def _require_branch(self, branch: str) -> str:
        sha = self.head(branch)
        if sha is None:
            raise NotFound(f"There is no branch {branch!r} in the project repository at {self.path}.")
        return sha

    def _revision(self, revision: str) -> str:
        """A commit sha for a full sha or a branch name (anything else could read as an option)."""
        if _SHA.fullmatch(revision):
            result = self._git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
            if result.code == 0:
                return result.text
            raise NotFound(f"There is no commit {revision} in the project repository at {self.path}.")
        return self._require_branch(revision)

    def _is_ancestor(self, older: str, newer: str) -> bool:
        result = self._git("merge-base", "--is-ancestor", older, newer)
        if result.code not in (0, 1):
            self._ok(result, "compare two commits")
        return result.code == 0

    def _raw_diff(self, old: str, new: str) -> list[_Entry]:
        # Plumbing: diff-tree reads no diff.* configuration (renames, external tools).
        result = self._ok(
            self._git("diff-tree", "-r", "-z", "--no-renames", "--no-abbrev", old, new), "compare two commits"
        )
        fields = result.out.split(b"\0")
        entries = []
        for header, path in zip(fields[0::2], fields[1::2], strict=False):
            if not header.startswith(b":"):
                continue
            old_mode, new_mode, old_sha, new_sha, status = header[1:].decode().split()
            entries.append(
                _Entry(
                    path.decode("utf-8", "surrogateescape"), status[0], old_mode, old_sha, new_mode, new_sha
                )
            )
        return sorted(entries, key=lambda e: e.path)

    def _blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The contents of the blobs named, read by one `cat-file --batch` (the all-zero sha of
        a missing side is left out)."""
        wanted = sorted({sha for sha in shas if sha.strip("0")})
        if not wanted:
            return {}
        result = self._ok(
            self._git("cat-file", "--batch", stdin="".join(f"{s}\n" for s in wanted).encode()), "read files"
        )
        blobs, position, out = {}, 0, result.out
        for sha in wanted:
            end = out.index(b"\n", position)
            header = out[position:end].split()
            if header[-1] == b"missing":
                raise GitError(
                    f"The project repository at {self.path} lacks the object {sha}: run `git fsck`."
                )
            size = int(header[2])
            blobs[sha] = out[end + 1 : end + 1 + size]
            position = end + 1 + size + 1
        return blobs

    # -- writing ---------------------------------------------------------------------------

    def commit(
        self,
        branch: str,
        changes: Mapping[str, bytes | None],
        *,
        author: Author,
        message: str,
        base: str | None = None,
        expected_head: str | None = None,
    ) -> str:
        """Commit `changes` (path -> new content, None to delete) onto `branch`, made from `base`
        (a branch or sha; main by default) if it does not exist yet. Returns the new sha.

        `expected_head` is the branch head the caller last saw: the commit is refused if the
        branch has moved since, so an edit made on a stale view never buries a newer one.
        """
        branch = self._proposal_branch(branch)
        if not changes:
            raise InvalidInput(f"nothing to commit: no files were given for {branch}.")
        files = {_clean_path(path): content for path, content in changes.items()}
        if any(not isinstance(c, bytes | None) for c in files.values()):
            raise InvalidInput("A file's new content must be bytes (or None to delete the file).")
        body = _clean_message(message)
        if expected_head is not None and not _SHA.fullmatch(expected_head):
            raise InvalidInput(f"{expected_head!r} is not a commit sha.")
        old = expected_head if expected_head is not None else self.head(branch)
        parent = old or (self._revision(base) if base is not None else self._require_main())
        # A private index: the repository's own index (and so the served checkout) stays as it is.
        with tempfile.TemporaryDirectory(prefix="asgard-index-") as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self._ok(self._git("read-tree", parent, env=index), f"read {branch}'s files")
            for path, content in files.items():
                if content is None:
                    self._ok(
                        self._git("update-index", "--force-remove", "--", path, env=index), f"remove {path}"
                    )
                    continue
                blob = self._ok(
                    self._git("hash-object", "-w", "--no-filters", "--stdin", stdin=content), f"store {path}"
                )
                entry = f"100644,{blob.text},{path}"
                self._ok(
                    self._git("update-index", "--add", "--replace", "--cacheinfo", entry, env=index),
                    f"add {path}",
                )
            tree = self._ok(self._git("write-tree", env=index), "record the files").text
        if tree == self._ok(self._git("rev-parse", f"{parent}^{{tree}}"), "read a commit").text:
            raise InvalidInput(f"nothing to commit: the files are as on {branch}.")
        sha = self._commit_tree(tree, [parent], author, body)
        self._swap(branch, sha, old)
        return sha

    def merge(self, branch: str, *, author: Author, message: str) -> str:
        """Bring `branch` into main (fast-forward if it can, else a merge commit by `author`) and
        the served checkout with it. Returns main's new sha; main's own if it already has the
        branch, so publishing twice does no harm."""
        branch = self._proposal_branch(branch)
        tip = self._require_branch(branch)
        body = _clean_message(message)
        old = self._require_main()
        if self._is_ancestor(tip, old):
            return old
        if self._is_ancestor(old, tip):
            new = tip
        else:
            tree = self._merge_tree(
                old,
                tip,
                lambda files: (
                    f"{branch} cannot be merged into {self.main}: both changed {', '.join(files)} "
                    f"differently since the branch was made. {self.main} was left as it was: bring "
                    f"the proposal up to date with {self.main}'s version of those files and publish again."
                ),
            )
            new = self._commit_tree(tree, [old, tip], author, body)
        self._advance_main(old, new)
        return new

    def push(self) -> PushResult:
        """Send main to the remote. If the remote has moved on, its commits are merged in first
        (a merge commit rather than a rebase: our commits keep their shas, which branches and
        the catalog may name) and the push is tried once more."""
        if self.remote is None:
            return PushResult(pushed=False, reason="no remote")
        self._ensure_origin()
        ours = self._require_main()
        first = self._push()
        if first.code == 0:
            up_to_date = first.out.startswith(b"=") or b"\n=" in first.out
            return PushResult(True, "the remote already had main" if up_to_date else "pushed", ours)
        if not re.search(rb"\[rejected\] \((fetch first|non-fast-forward)\)", first.out):
            self._push_failed(first)
        fetched = self._git(
            "fetch",
            "--no-tags",
            REMOTE,
            f"+refs/heads/{self.main}:refs/remotes/{REMOTE}/{self.main}",
            timeout=NETWORK_TIMEOUT_S,
        )
        self._ok(
            fetched, f"fetch {self.main} from {self.remote}", "Check the remote and the portal's credentials."
        )
        theirs = self._ok(
            self._git("rev-parse", f"refs/remotes/{REMOTE}/{self.main}"), "read the remote's main"
        ).text
        new = self._integrate(ours, theirs)
        if new != ours:
            self._advance_main(ours, new)
        second = self._push()
        if second.code != 0:
            self._push_failed(second, again=True)
        return PushResult(True, "merged the remote's new commits and pushed", new, integrated=True)

    def delete_branch(self, branch: str) -> None:
        """Remove `branch`, and its copy on the remote if it was pushed there. Deleting a branch
        that is not there is no error, so a discard can be retried."""
        branch = self._proposal_branch(branch)
        old = self.head(branch)
        if old is not None:
            self._ok(self._git("update-ref", "-d", f"refs/heads/{branch}", old), f"delete {branch}", "Retry.")
        tracking = f"refs/remotes/{REMOTE}/{branch}"
        # The tracking ref is git's own record that the branch was pushed (or fetched).
        if self.remote is None or self._git("rev-parse", "--verify", "--quiet", tracking).code != 0:
            return
        self._ensure_origin()
        result = self._git("push", REMOTE, "--delete", f"refs/heads/{branch}", timeout=NETWORK_TIMEOUT_S)
        if result.code != 0 and "remote ref does not exist" not in result.err:
            self._ok(
                result,
                f"delete {branch} on {self.remote}",
                f"The local branch is gone; delete the remote's with `git push {REMOTE} --delete {branch}`.",
            )
        self._git("update-ref", "-d", tracking)

    # -- helpers that write ------------------------------------------------------------------

    def _proposal_branch(self, branch: str) -> str:
        """`branch`, unless it is main: main moves only by merge, which keeps the checkout in step."""
        if _branch_name(branch) == self.main:
            raise InvalidInput(
                f"{branch!r} is the branch the portal serves: commit to a proposal branch and merge it."
            )
        return branch

    def _commit_tree(self, tree: str, parents: list[str], author: Author, message: bytes) -> str:
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        result = self._git(
            "commit-tree",
            "--no-gpg-sign",  # nobody is there to unlock a signing key
            tree,
            *parent_args,
            "-F",
            "-",
            stdin=message,
            env={"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email},
        )
        return self._ok(result, "make a commit").text

    def _swap(self, branch: str, new: str, old: str | None) -> None:
        """Move `branch` from `old` (None: it must not exist yet) to `new`, or refuse if another
        writer moved it first: the compare-and-swap that keeps racing writers from losing work."""
        ref = f"refs/heads/{branch}"
        result = self._git("update-ref", "-m", "asgard portal", ref, new, old or "")
        if result.code != 0 and any(sign in result.err for sign in _LOST_RACE):
            raise GitError(
                f"{branch} moved while this change was being saved (another change was saved at the "
                "same moment): nothing was lost, but this change was not saved. Reload and try again."
            )
        self._ok(
            result, f"move {branch}", "Choose a branch name that does not clash with an existing branch."
        )

    def _merge_tree(self, ours: str, theirs: str, conflict_message: Callable[[list[str]], str]) -> str:
        """The tree of merging two commits, computed without a work tree."""
        result = self._git("merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs)
        if result.code == 1:
            names = [n.decode("utf-8", "replace") for n in result.out.split(b"\0")[1:] if n]
            files = sorted(set(names))
            raise MergeConflict(conflict_message(files), files)
        return (
            self._ok(result, "merge", "The two lines of history may share no commit: merge them by hand.")
            .out.split(b"\0")[0]
            .decode()
        )

    def _integrate(self, ours: str, theirs: str) -> str:
        """Our main with the remote's `theirs` brought in: a fast-forward or a merge commit."""
        if self._is_ancestor(theirs, ours):
            return ours
        if self._is_ancestor(ours, theirs):
            return theirs
        if self._git("merge-base", ours, theirs).code != 0:
            raise GitError(
                f"The remote {self.remote}'s {self.main} shares no history with the project repository's: "
                f"the portal will not merge unrelated histories. Clone the remote into {self.path} instead."
            )
        tree = self._merge_tree(
            theirs,
            ours,
            lambda files: (
                f"The remote {self.remote}'s {self.main} changed {', '.join(files)} differently from the "
                f"portal's {self.main}, so it was not pushed. Nothing was lost: the portal's commits stay on "
                f"{self.main} and on their branches. Merge the remote's {self.main} by hand in {self.path}, "
                "then publish again."
            ),
        )
        message = f"Bring in the new commits on {self.remote}'s {self.main}"
        return self._commit_tree(tree, [theirs, ours], PORTAL, _clean_message(redact(message)))

    def _push(self) -> _Result:
        ref = f"refs/heads/{self.main}"
        return self._git("push", "--porcelain", REMOTE, f"{ref}:{ref}", timeout=NETWORK_TIMEOUT_S)

    def _push_failed(self, result: _Result, *, again: bool = False) -> None:
        rejected = re.search(rb"\[rejected\][^\n]*", result.out)
        why = rejected.group().decode() if rejected else result.why
        moved = " (the remote moved on again while the portal merged it)" if again else ""
        raise GitError(
            f"git could not push {self.main} to {self.remote}{moved}: {why}. Nothing was lost: the "
            f"commits stay on {self.main} in {self.path}. Check that the remote is reachable and that "
            "the portal's credentials (ssh agent, credential helper, GIT_ASKPASS) may push to it, then "
            "push again."
        )

    # -- the served checkout ---------------------------------------------------------------

    def _require_served_on_main(self) -> None:
        result = self._git("symbolic-ref", "-q", "HEAD")
        if result.text != f"refs/heads/{self.main}":
            where = result.text.removeprefix("refs/heads/") or "a detached commit"
            raise GitError(
                f"The served checkout at {self.path} is on {where}, not on {self.main}: the portal "
                f"publishes into {self.main} and keeps the checkout on it. Switch it back "
                f"(`git -C {self.path} switch {self.main}`) and publish again."
            )

    def _advance_main(self, old: str, new: str) -> None:
        """Move main from `old` to `new` and bring the served checkout along, losing nothing.

        Only the files that differ between the two commits are written. Each must be, in the
        checkout, as in `old` (untouched) or already as in `new` (the portal wrote the product's
        files there before building it); any other local edit stops the move before main moves.
        """
        self._require_served_on_main()
        entries = [e for e in self._raw_diff(old, new) if _GITLINK not in (e.old_mode, e.new_mode)]
        for entry in entries:
            try:
                _clean_path(entry.path)
            except InvalidInput as error:
                raise GitError(f"{new} holds a path the portal will not write: {error}") from error
        blobs = self._blobs(sha for e in entries for sha in (e.old_sha, e.new_sha))
        edited = [
            e.path
            for e in entries
            if not (
                self._checkout_has(e.path, e.old_mode, blobs.get(e.old_sha))
                or self._checkout_has(e.path, e.new_mode, blobs.get(e.new_sha))
            )
        ]
        if edited:
            raise GitError(
                f"The served checkout at {self.path} has local changes to {', '.join(edited)} that "
                f"moving {self.main} would overwrite, so {self.main} was not moved. Commit or remove "
                f"those changes (`git -C {self.path} status` shows them) and try again."
            )
        self._swap(self.main, new, old)
        try:
            # Deletions first, so a file that becomes a directory (or back) has room.
            for entry in entries:
                if entry.new_mode == _ABSENT or entry.new_mode[:2] != entry.old_mode[:2]:
                    self._remove(entry.path)
            for entry in entries:
                content = blobs.get(entry.new_sha)
                # A file the portal already wrote as it is now is left alone (and its mtime).
                if content is not None and not self._checkout_has(entry.path, entry.new_mode, content):
                    self._write(entry.path, entry.new_mode, content)
            # The index to main's new tree (the work tree already is), then restat it, so
            # `git status` shows only the checkout's own local changes.
            self._ok(self._git("read-tree", new), "update the index")
            self._git("update-index", "-q", "--refresh")
        except (OSError, GitError) as error:
            raise GitError(
                f"{self.main} moved to {new}, but the served checkout at {self.path} could not be fully "
                f"updated ({error}). Fix the cause, then bring the checkout to {self.main} by hand "
                f"(`git -C {self.path} status` shows what is left)."
            ) from error

    def _checkout_has(self, path: str, mode: str, content: bytes | None) -> bool:
        """Whether the checkout holds `path` as one side of a change has it (absent included)."""
        target = self.path / path
        if mode == _ABSENT:
            return not target.exists() and not target.is_symlink()
        if mode == _SYMLINK:
            return target.is_symlink() and os.fsencode(os.readlink(target)) == content
        return target.is_file() and not target.is_symlink() and target.read_bytes() == content

    def _inside(self, path: str) -> Path:
        target = self.path / path
        # A directory in the checkout that is a symlink must not carry a write outside it.
        if not target.parent.resolve().is_relative_to(self.path):
            raise GitError(
                f"{path} lies outside the served checkout at {self.path} (through a symlink): remove the link."
            )
        return target

    def _remove(self, path: str) -> None:
        target = self._inside(path)
        if target.is_symlink() or target.is_file():
            target.unlink()
        # Like git, leave no empty directory behind.
        parent = target.parent
        while parent != self.path and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def _write(self, path: str, mode: str, content: bytes) -> None:
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == _SYMLINK:
            target.unlink(missing_ok=True)
            os.symlink(os.fsdecode(content), target)
            return
        # Write beside it, then rename: dbt reading the project never sees half a file.
        handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".asgard")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.chmod(scratch, 0o755 if mode == "100755" else 0o644)
            os.replace(scratch, target)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise
