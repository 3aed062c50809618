"""Write-audit-publish on a Nessie branch: build and test on a branch, merge into main only if all pass.

    main ──●──────────────────────────●── (merge: only when `dbt build` passed)
            \\                        /
             ●── dbt build/test ──●──      branch wap-<run id>, deleted afterwards

How the build reaches the branch: Trino's Iceberg connector reads and writes one Nessie
reference per catalog (`iceberg.nessie-catalog.ref`) and has no session-level way to switch it.
So each run creates a catalog of its own with `CREATE CATALOG wap_<run id> USING iceberg WITH
(... the main catalog's properties, ref = the branch ...)` (Trino's dynamic catalogs,
`catalog.management=dynamic`), runs dbt with that catalog as its `database`, and drops the catalog
afterwards. Sources, refs and tests all resolve inside that catalog, so everything the build reads
and writes is on the branch, and `main` is touched only by the merge.

Nessie is spoken to through its REST API v2 (create branch, merge, delete). The result of a run is
a `WapResult`: branch, the commit hashes (main before, branch head, main after) and the outcome,
ready to store in a run record (`WapResult.as_record()`).

With `hold` (review required) a build that passed is not merged: its branch stays, with its head
recorded, until a reviewer approves (`merge_held`: main must not have changed what it changes) or
rejects it (the branch is deleted).

`NessiePublisher` is the creation flow's publisher on Trino (the `Publisher` of
portal/creation/publish/base.py): one product built on a run's branch and merged when it passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trino

from portal.creation.publish.base import (
    Audit,
    LineSink,
    PublishConflict,
    Published,
    Publisher,
    node_outcomes,
)
from portal.errors import Unavailable
from portal.project.dbt_runner import DbtResult, StopRequest, run_dbt
from portal.settings import ROOT, Settings
from portal.warehouse import Relation, WarehouseError, open_warehouse
from portal.warehouse.trino import service_connection

# Nessie's reference-name rule, and a stricter one for the names we make ourselves.
_NESSIE_REF = re.compile(r"[A-Za-z](?:(?:(?![.][.])[A-Za-z0-9./_-])*[A-Za-z0-9_-])?")
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9_]{0,40}")
# dbt selection syntax (names, paths, tags, graph operators); passed as argv, never through a shell.
_SELECTOR = re.compile(r"[A-Za-z0-9_.:/+*@,=-]+")
_ENV_REF = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}")

PUBLISHED = "published"  # built, tested, merged into main
IN_REVIEW = "in_review"  # built and tested, held on its branch for a reviewer: main untouched
FAILED = "failed"  # dbt build or a test failed: branch deleted, main untouched
CONFLICT = "conflict"  # built and tested, but Nessie refused the merge: main untouched
ERROR = "error"  # the machinery failed (Nessie or Trino unreachable, ...): main untouched


class WapError(Unavailable):
    """Write-audit-publish could not be set up or cleaned up; the message says what to do."""


class NessieError(WapError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WapConfig:
    """Where Nessie is and how the main Iceberg catalog is configured (the branch catalog copies it)."""

    nessie_uri: str  # API v2 base, e.g. http://127.0.0.1:19120/api/v2
    catalog_properties: Mapping[str, str]  # the main catalog's Trino properties, connector.name included
    main_branch: str = "main"

    @classmethod
    def from_catalog_file(cls, path: str | Path, *, main_branch: str | None = None) -> WapConfig:
        """Read the main catalog's Trino `.properties` file (e.g. var/stack/etc/catalog/nessie.properties)."""
        properties = read_properties(Path(path))
        if properties.get("iceberg.catalog.type") != "nessie":
            raise WapError(
                f"{path} is not an Iceberg catalog on Nessie (iceberg.catalog.type="
                f"{properties.get('iceberg.catalog.type')!r}); write-audit-publish needs one."
            )
        uri = _resolve_env(properties.get("iceberg.nessie-catalog.uri", ""))
        if not uri:
            raise WapError(f"{path} has no iceberg.nessie-catalog.uri.")
        return cls(
            nessie_uri=uri.rstrip("/"),
            catalog_properties=properties,
            main_branch=main_branch or properties.get("iceberg.nessie-catalog.ref", "main"),
        )


@dataclass(frozen=True)
class WapResult:
    run_id: str
    branch: str
    catalog: str
    selection: tuple[str, ...]
    outcome: str  # PUBLISHED, FAILED, CONFLICT or ERROR
    main_hash_before: str | None  # main's head when the branch was cut from it
    branch_hash: str | None  # the branch's head after the build (what a merge takes)
    main_hash_after: str | None  # main's head afterwards: the merge commit, or unchanged
    branch_deleted: bool
    message: str
    started_at: dt.datetime
    elapsed_s: float
    dbt: DbtResult | None = field(default=None, repr=False)

    @property
    def merged(self) -> bool:
        return self.outcome == PUBLISHED

    def as_record(self) -> dict[str, Any]:
        """What a run record stores (JSON-ready)."""
        return {
            "run_id": self.run_id,
            "branch": self.branch,
            "catalog": self.catalog,
            "selection": list(self.selection),
            "outcome": self.outcome,
            "merged": self.merged,
            "main_hash_before": self.main_hash_before,
            "branch_hash": self.branch_hash,
            "main_hash_after": self.main_hash_after,
            "branch_deleted": self.branch_deleted,
            "message": self.message,
            "started_at": self.started_at.isoformat(),
            "elapsed_s": round(self.elapsed_s, 3),
            "dbt_returncode": None if self.dbt is None else self.dbt.returncode,
        }


class NessieClient:
    """The few calls of Nessie's REST API v2 that write-audit-publish needs."""

    def __init__(self, uri: str, *, timeout_s: float = 30.0, token: str | None = None) -> None:
        self.uri = uri.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.uri, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NessieClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NessieError(
                f"Nessie at {self.uri} did not answer ({exc}). Start it (`make stack-up`) or check its URI."
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("message") or response.text
            except ValueError:
                detail = response.text
            raise NessieError(
                f"Nessie refused {method} {path}: {detail} (HTTP {response.status_code})",
                response.status_code,
            )
        return response.json() if response.content else {}

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/config")

    def branches(self) -> dict[str, str]:
        """Every branch and tag name with its head hash."""
        body = self._call("GET", "/trees")
        return {ref["name"]: ref["hash"] for ref in body.get("references", [])}

    def head(self, ref: str) -> str:
        return str(self._call("GET", f"/trees/{_ref(ref)}")["reference"]["hash"])

    def create_branch(self, name: str, *, from_ref: str, from_hash: str) -> str:
        body = self._call(
            "POST",
            "/trees",
            params={"name": _ref(name), "type": "BRANCH"},
            json={"type": "BRANCH", "name": _ref(from_ref), "hash": from_hash},
        )
        return str(body["reference"]["hash"])

    def merge(self, *, into: str, expected_hash: str, from_ref: str, from_hash: str, message: str) -> str:
        """Merge `from_ref@from_hash` into `into` if it is still at `expected_hash`; returns the new head."""
        body = self._call(
            "POST",
            f"/trees/{_ref(into)}@{expected_hash}/history/merge",
            json={"fromRefName": _ref(from_ref), "fromHash": from_hash, "message": message},
        )
        if not body.get("wasSuccessful", False):
            raise NessieError(f"Nessie did not merge {from_ref} into {into}: {body}")
        return str(body["resultantTargetHash"])

    def delete_branch(self, name: str, expected_hash: str) -> None:
        self._call("DELETE", f"/trees/{_ref(name)}@{expected_hash}")

    def entries(self, ref: str) -> dict[str, str]:
        """Content keys (dotted) on `ref` with their type (ICEBERG_TABLE, NAMESPACE, ...)."""
        body = self._call("GET", f"/trees/{_ref(ref)}/entries")
        return {".".join(e["name"]["elements"]): e["type"] for e in body.get("entries", [])}


def write_audit_publish(
    settings: Settings,
    config: WapConfig,
    selection: Sequence[str],
    *,
    run_id: str | None = None,
    dbt_target: str = "trino",
    target_dir: str | Path | None = None,
    on_line: LineSink | None = None,
    timeout_s: float | None = None,
    timeout_setting: str | None = None,
    stop: StopRequest | None = None,
    lock: bool = True,
    hold: bool = False,
) -> WapResult:
    """Build and test `selection` (dbt selectors) on a new Nessie branch; merge into main only if all pass.

    The branch and its Trino catalog are removed at the end whatever happened. A failure at
    any step leaves main exactly as it was: it is only ever changed by the final merge.
    dbt writes the audit build's artifacts to `target_dir` (default var/wap/<run id>/target),
    never over the portal's own; `dbt_target` names the profile's Trino target. `lock=False` is
    for a caller already holding the project's dbt lock (it is not re-entrant). `timeout_s`,
    `timeout_setting` and `stop` bound the build (see `run_dbt`): a stopped build is FAILED, its
    branch and catalog removed like any other's. With `hold` a build that passed is IN_REVIEW:
    not merged, and its branch kept (only its catalog goes) for `merge_held` or a rejection.
    """
    say = on_line or (lambda _line: None)
    selection = tuple(selection)
    if not selection:
        raise WapError("Nothing selected: name the models to build, e.g. ['dp_customer_360'].")
    for selector in selection:
        if not _SELECTOR.fullmatch(selector):
            raise WapError(f"{selector!r} is not a dbt selector (letters, digits and _ . : / + * @ , = -).")
    run_id = run_id or f"{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}_{secrets.token_hex(3)}"
    if not _RUN_ID.fullmatch(run_id):
        raise WapError(f"run id {run_id!r} must be lower-case letters, digits and _ (at most 41).")
    branch, catalog = branch_for(run_id), catalog_for(run_id)
    started_at = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()

    main_before: str | None = None
    branch_hash: str | None = None
    main_after: str | None = None
    branch_created = catalog_created = branch_deleted = False
    outcome, message, build = ERROR, "", None

    with NessieClient(config.nessie_uri) as nessie:
        try:
            main_before = nessie.head(config.main_branch)
            nessie.create_branch(branch, from_ref=config.main_branch, from_hash=main_before)
            branch_created = True
            say(f"Created Nessie branch {branch} from {config.main_branch}@{main_before[:12]}")

            with _trino(settings) as cursor:
                _execute(cursor, create_catalog_sql(catalog, config.catalog_properties, branch))
            catalog_created = True
            say(f"Created Trino catalog {catalog} on branch {branch}")

            branch_settings = dataclasses.replace(
                settings,
                trino_catalog=catalog,
                dbt_target=dbt_target,
                dbt_target_dir=str(target_dir or ROOT / "var" / "wap" / run_id / "target"),
            )
            build = run_dbt(
                branch_settings,
                ["build", "--select", *selection],
                on_line=on_line,
                timeout_s=timeout_s,
                timeout_setting=timeout_setting,
                stop=stop,
                lock=lock,
            )
            branch_hash = nessie.head(branch)
            if build.stopped:
                outcome = FAILED
                message = f"{build.message} Nothing was merged and {config.main_branch} is unchanged."
            elif not build.ok:
                outcome = FAILED
                message = (
                    f"dbt build failed on branch {branch} (exit {build.returncode}); nothing was merged "
                    f"and {config.main_branch} is unchanged. The end of dbt's log:\n{build.tail(20)}"
                )
            elif branch_hash == main_before:
                outcome = FAILED
                message = f"dbt build on {branch} committed nothing; nothing to publish."
            elif hold:
                outcome = IN_REVIEW
                message = (
                    f"Built and tested on {branch} (head {branch_hash[:12]}); it waits there for a "
                    f"reviewer, and {config.main_branch} is unchanged until it is approved."
                )
            else:
                expected = nessie.head(config.main_branch)
                try:
                    main_after = nessie.merge(
                        into=config.main_branch,
                        expected_hash=expected,
                        from_ref=branch,
                        from_hash=branch_hash,
                        message=f"asgard write-audit-publish {run_id}: {' '.join(selection)}",
                    )
                    outcome = PUBLISHED
                    message = (
                        f"Built and tested on {branch}, merged into {config.main_branch} "
                        f"({expected[:12]} -> {main_after[:12]})."
                    )
                except NessieError as exc:
                    outcome = CONFLICT
                    message = f"Built and tested on {branch}, but Nessie refused the merge: {exc}"
        except WapError as exc:
            outcome, message = ERROR, str(exc)
        except trino.exceptions.TrinoUserError as exc:
            outcome, message = ERROR, f"Trino refused to set up the branch catalog: {exc.message}"
        except (trino.exceptions.HttpError, OSError) as exc:
            outcome, message = (
                ERROR,
                f"Trino at {settings.trino_host}:{settings.trino_port} did not answer ({exc}).",
            )
        finally:
            cleanup: list[str] = []
            if catalog_created:
                try:
                    with _trino(settings) as cursor:
                        _execute(cursor, f'DROP CATALOG IF EXISTS "{catalog}"')
                except Exception as exc:  # report, never mask the run's own outcome
                    cleanup.append(f"could not drop Trino catalog {catalog}: {exc}")
            if branch_created and outcome != IN_REVIEW:
                try:
                    nessie.delete_branch(branch, nessie.head(branch))
                    branch_deleted = True
                except WapError as exc:
                    cleanup.append(f"could not delete Nessie branch {branch}: {exc}")
            try:
                if main_after is None and main_before is not None:
                    main_after = nessie.head(config.main_branch)
            except WapError as exc:
                cleanup.append(str(exc))
            if cleanup:
                message = (message + "\n" if message else "") + "Clean-up: " + "; ".join(cleanup)
    say(f"Write-audit-publish {run_id}: {outcome}. {message.splitlines()[0] if message else ''}")
    return WapResult(
        run_id=run_id,
        branch=branch,
        catalog=catalog,
        selection=selection,
        outcome=outcome,
        main_hash_before=main_before,
        branch_hash=branch_hash,
        main_hash_after=main_after,
        branch_deleted=branch_deleted,
        message=message,
        started_at=started_at,
        elapsed_s=time.perf_counter() - clock,
        dbt=build,
    )


def branch_for(run_id: str) -> str:
    """The Nessie branch of a run."""
    return f"wap-{run_id.replace('_', '-')}"


def catalog_for(run_id: str) -> str:
    """The Trino catalog, on the run's branch, that the run's dbt build writes through."""
    return f"wap_{run_id}"


class NessiePublisher(Publisher):
    """A run's Nessie branch as the staging area, and the merge into main as the publish."""

    engine = "nessie"
    # The Nessie branch isolates the build, so the model keeps its schema there and the directory
    # is named apart (a path under wap_audit/ would put it in the audit schema).
    audit_dir_name = "wap_branch"

    def config(self) -> WapConfig:
        """Nessie's URI and the main catalog's properties, from the file PORTAL_TRINO_CATALOG_PROPERTIES."""
        return WapConfig.from_catalog_file(self.settings.trino_catalog_properties)

    def unsupported(self) -> str | None:
        try:
            self.config()
        except WapError as exc:
            return (
                f"Products are published on Trino through a Nessie branch, which needs the catalog's "
                f"properties: {exc} Set PORTAL_TRINO_CATALOG_PROPERTIES to the Trino catalog file of "
                f"`{self.settings.trino_catalog}`."
            )
        return None

    def catalogs(self) -> tuple[str, ...]:
        # On Trino the Iceberg catalog is configured.
        return (self.settings.trino_catalog,)

    def pending_record(self, wap_id: str) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "branch": branch_for(wap_id),
            "outcome": "running",
            "published": False,
        }

    def audit(
        self,
        name: str,
        *,
        materialization: str,
        wap_id: str,
        audit_dir: Path,
        say: LineSink,
        stage: LineSink,
        stop: StopRequest | None = None,
        hold: bool = False,
    ) -> Audit:
        """Build `name` and its tests on a Nessie branch; merge the branch into main if all passed
        (with `hold`, keep the branch for a reviewer).

        `audit_dir` comes from `prepare_audit`; the caller holds the project's dbt lock. The record
        holds the branch, main's hash before, the branch's head, main's hash after and the outcome."""
        settings = self.settings
        config = self.config()
        branch = branch_for(wap_id)
        stage(
            f"Building {name} and its tests on the Nessie branch `{branch}` (cut from `{config.main_branch}`) …"
        )
        result = write_audit_publish(
            settings,
            config,
            [name],
            run_id=wap_id,
            dbt_target=settings.dbt_target,
            target_dir=audit_dir,
            on_line=say,
            timeout_s=settings.build_timeout_s,
            timeout_setting="build_timeout_s",
            stop=stop,
            lock=False,
            hold=hold,
        )
        record = {"engine": self.engine, **result.as_record(), "published": result.merged}
        if result.dbt is not None and result.dbt.stopped:
            record["stopped"] = result.dbt.stopped
        outcomes = node_outcomes(audit_dir, name)
        build = result.dbt or DbtResult(
            argv=[], returncode=-1, log=result.message, elapsed_s=result.elapsed_s
        )
        if result.outcome == FAILED:
            if build.stopped:
                stage(result.message)
            else:
                self._passed(build, outcomes, stage)  # says which nodes failed
            return Audit(build, outcomes, published=False, record=record)
        if result.outcome == IN_REVIEW:
            stage(result.message)
            return Audit(build, outcomes, published=False, record=record, held=True)
        if not result.merged:
            # Nessie or Trino failed around a build (conflict, unreachable): not the product's fault.
            stage(f"Publishing failed: {result.message}")
            return Audit(build, outcomes, published=False, error=result.message, record=record)
        stage(result.message)
        row_count = self._count(name, stage)
        return Audit(build, outcomes, published=True, row_count=row_count, record=record)

    def _count(self, name: str, stage: LineSink) -> int | None:
        try:
            return open_warehouse(self.settings).count(self.published_relation(name))
        except WarehouseError as exc:  # published all the same; the count is only informative
            stage(f"Published, but counting its rows failed: {exc}")
            return None

    def publish_held(self, name: str, *, materialization: str, record: Mapping[str, Any]) -> Published:
        """Merge the held branch into main as the reviewer saw it (its recorded head), then delete
        it. Nessie merges only what the branch changed; PublishConflict when main changed the same
        tables since the branch was cut (nothing is merged then, and the branch stays)."""
        config = self.config()
        branch, branch_hash = _held_branch(record)
        with NessieClient(config.nessie_uri) as nessie:
            heads = nessie.branches()
            if heads.get(branch) != branch_hash:
                raise WapError(
                    f"The Nessie branch {branch} is {'gone' if branch not in heads else 'not as reviewed'}; "
                    "the proposal cannot be published as it was reviewed. Resubmit it to build it again."
                )
            before = nessie.head(config.main_branch)
            try:
                after = nessie.merge(
                    into=config.main_branch,
                    expected_hash=before,
                    from_ref=branch,
                    from_hash=branch_hash,
                    message=f"asgard review approved {record.get('run_id', branch)}: {name}",
                )
            except NessieError as exc:
                if exc.status == 409:
                    raise PublishConflict(
                        f"Nessie refused to merge {branch} into {config.main_branch}: {config.main_branch} "
                        f"changed the same tables since the proposal was built ({exc}). Resubmit it to "
                        "build it on main as it is now."
                    ) from exc
                raise
            nessie.delete_branch(branch, branch_hash)
        published = {
            **record,
            "outcome": PUBLISHED,
            "merged": True,
            "published": True,
            "main_hash_at_approval": before,
            "main_hash_after": after,
            "branch_deleted": True,
        }
        return Published(self._count(name, lambda _line: None), published)

    @contextmanager
    def held_relation(self, name: str, record: Mapping[str, Any]) -> Iterator[Relation]:
        """A Trino catalog of its own on the held branch, for as long as the caller reads it (a
        catalog per reader: two reviewers may look at once)."""
        config = self.config()
        branch, _ = _held_branch(record)
        catalog = f"review_{secrets.token_hex(4)}"
        with _trino(self.settings) as cursor:
            _execute(cursor, create_catalog_sql(catalog, config.catalog_properties, branch))
        try:
            yield Relation(catalog, self.settings.gold_schema, name)
        finally:
            with _trino(self.settings) as cursor:
                _execute(cursor, f'DROP CATALOG IF EXISTS "{catalog}"')

    def drop_audit(self, name: str, record: Mapping[str, Any] | None = None) -> None:
        """Remove the Trino catalog and the Nessie branch of an audit that never reached its own
        clean-up (its process died; `record` names the branch). An audit that ran to its end
        removed both itself, so without a record there is nothing to remove."""
        branch = record.get("branch") if record else None
        if not isinstance(branch, str) or not branch.startswith("wap-"):
            return
        wap_id = branch.removeprefix("wap-").replace("-", "_")  # branch_for, inverted
        if not _RUN_ID.fullmatch(wap_id) or branch_for(wap_id) != branch:
            raise WapError(f"{branch!r} is not the branch of a portal audit; leaving it alone.")
        with _trino(self.settings) as cursor:
            _execute(cursor, f'DROP CATALOG IF EXISTS "{catalog_for(wap_id)}"')
        with NessieClient(self.config().nessie_uri) as nessie:
            if branch in nessie.branches():
                nessie.delete_branch(branch, nessie.head(branch))


def _held_branch(record: Mapping[str, Any]) -> tuple[str, str]:
    """The branch and head of a held build, from its run record."""
    branch, head = record.get("branch"), record.get("branch_hash")
    if record.get("outcome") != IN_REVIEW or not isinstance(branch, str) or not isinstance(head, str):
        raise WapError(f"The run record {dict(record)} holds no build waiting for review on a Nessie branch.")
    return _ref(branch), head


def create_catalog_sql(catalog: str, properties: Mapping[str, str], branch: str) -> str:
    """`CREATE CATALOG` for a copy of the main catalog that reads and writes `branch`."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", catalog):
        raise WapError(f"catalog name {catalog!r} must be lower-case letters, digits and _.")
    _ref(branch)
    connector = properties.get("connector.name", "iceberg")
    values = {k: v for k, v in properties.items() if k != "connector.name"}
    values["iceberg.nessie-catalog.ref"] = branch
    assignments = ",\n  ".join(f'"{_ident(k)}" = {_literal(v)}' for k, v in sorted(values.items()))
    return f'CREATE CATALOG "{catalog}" USING {_ident(connector)}\nWITH (\n  {assignments}\n)'


def read_properties(path: Path) -> dict[str, str]:
    """A Java-style `.properties` file as written for Trino (key=value lines, # comments)."""
    if not path.exists():
        raise WapError(
            f"{path} does not exist. Start the local stack (`make stack-up`) or point at your catalog file."
        )
    properties: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        properties[key.strip()] = value.strip()
    return properties


@contextmanager
def _trino(settings: Settings) -> Iterator[trino.dbapi.Cursor]:
    con = service_connection(settings)
    try:
        yield con.cursor()
    finally:
        con.close()


def _execute(cursor: trino.dbapi.Cursor, sql: str) -> list[list[Any]]:
    cursor.execute(sql)
    return cursor.fetchall()


def _ref(name: str) -> str:
    if not _NESSIE_REF.fullmatch(name):
        raise WapError(f"{name!r} is not a valid Nessie reference name.")
    return name


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise WapError(f"{name!r} is not a catalog property name Trino accepts.")
    return name


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _resolve_env(value: str) -> str:
    """Resolve Trino-style ${ENV:NAME} references, for the values this process uses itself."""
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), value)
