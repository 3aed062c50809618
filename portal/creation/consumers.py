"""Consumers of a product, written as dbt exposures in the project: who reads it, and for what.

A team that reads a data product registers it (a dashboard, a notebook, an ML job ...); the portal
writes one properties file per consumer, `<data products>/consumers/<exposure>.yml`, holding one
dbt exposure that `depends_on: [ref('<product>')]`. dbt itself then knows the consumer:
`dbt ls --select +exposure:<name>` lists the product and what it is built from, and the portal's
lineage graph and impact analysis (portal/lineage/graph.py) name it with its owner, so whoever
changes the product knows whom to tell.

How a registration (or a removal) lands, under the project's lock:

1. the file is committed on a branch of its own, `product/<product>/consumer-<name>-<time>`,
   authored by the registrant (portal/creation/commits.py); the checkout is untouched so far;
2. the file is written into the checkout atomically (portal/creation/scaffold.py: whole or absent,
   never replacing another), or removed;
3. `dbt parse`: if dbt refuses the project, the file is put back as it was and the branch goes:
   the project, its git history and its manifest (a failed parse writes none) are as before;
4. the branch is merged into main at once and main is pushed; the catalog is synced.

Why straight to main, also when PORTAL_REVIEW is required: review guards what a change publishes
(a product's SQL, contract and data, held until a reviewer approves it; portal/creation/review.py).
An exposure publishes nothing: dbt builds nothing for it and no product's files or data change. It
is the consumer's own statement that they read the product, and holding it in review would hide a
real dependency from impact analysis while it waited. The product's owners can remove it (the
rules are portal/auth/access.py's), and git keeps who registered it, as deprecation does.

This module imports no web framework.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from portal import audit
from portal.auth import access
from portal.auth.identity import PARTY_RE, Identity
from portal.creation import commits
from portal.creation.lifecycle import models_dir
from portal.creation.scaffold import properties_text, read_back_problem, remove_file, write_new_file
from portal.creation.spec import Problem, text_problems
from portal.errors import Conflict, InvalidInput, NotFound, PortalError, Unavailable
from portal.project.dbt_runner import project_lock, run_dbt
from portal.project.statuses import LIVE_LIFECYCLES
from portal.runs import registration
from portal.service import CatalogEntry, PortalService
from portal.settings import Settings

log = logging.getLogger(__name__)

EXPOSURE_TYPES = ("dashboard", "notebook", "analysis", "ml", "application")  # dbt's own choices
MATURITIES = ("high", "medium", "low")
CONSUMERS_FOLDER = "consumers"  # under the data products' path: one exposure file per consumer
# A dbt identifier the selector `exposure:<name>` and a file name can both carry as is.
EXPOSURE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,79}\Z")
EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
MAX_URL = 2000
MAX_DESCRIPTION = 2000
BRANCH_PREFIX = "consumer-"


class ConsumerRefused(InvalidInput):
    """The registration cannot be written as asked; `problems` say what to fix."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(" ".join(problem.message for problem in problems), problems=problems)
        self.problems = problems


class ConsumerExists(Conflict):
    """The exposure name is taken in the project; the message says how to pick another."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message, problems=[problem])


@dataclass(frozen=True)
class ConsumerRequest:
    """What a consuming team registers. `name` is the exposure's; None derives it from the
    owner and the product (`derived_name`)."""

    owner_name: str
    owner_email: str
    description: str
    url: str
    type: str = "dashboard"
    maturity: str = "medium"
    name: str | None = None


@dataclass(frozen=True)
class Consumer:
    """A dbt exposure that reads a product, as the manifest has it."""

    name: str
    unique_id: str
    product: str
    type: str
    maturity: str | None
    owner_name: str | None
    owner_email: str | None
    url: str | None
    description: str
    registered_by: str | None  # None: written by hand in the project
    registered_at: str | None
    path: str  # the file, relative to the dbt project
    registered_here: bool  # written by the portal, so the portal may remove it


# --- reading ---------------------------------------------------------------------------------


def consumers_of(service: PortalService, key: str) -> list[Consumer]:
    """The exposures that read the product `key` directly (portal-registered or hand-written), by name."""
    entry = service.entry(key)
    manifest = service.artifacts().manifest.raw
    found = [
        _consumer(raw, entry.name, service.settings)
        for raw in (manifest.get("exposures") or {}).values()
        if entry.unique_id in ((raw.get("depends_on") or {}).get("nodes") or [])
    ]
    return sorted(found, key=lambda c: c.name)


def _consumer(raw: dict[str, Any], product: str, settings: Settings) -> Consumer:
    meta = {**(raw.get("meta") or {}), **((raw.get("config") or {}).get("meta") or {})}
    owner = raw.get("owner") or {}
    path = str(raw.get("original_file_path") or "")
    name = str(raw.get("name") or "")
    return Consumer(
        name=name,
        unique_id=str(raw.get("unique_id") or ""),
        product=product,
        type=str(raw.get("type") or ""),
        maturity=raw.get("maturity"),
        owner_name=owner.get("name"),
        owner_email=owner.get("email"),
        url=raw.get("url"),
        description=str(raw.get("description") or ""),
        registered_by=_text_or_none(meta.get("registered_by")),
        registered_at=_text_or_none(meta.get("registered_at")),
        path=path,
        registered_here=path == _relative(settings, exposure_path(settings, name)),
    )


def _text_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def removal_refusal(service: PortalService, consumer: Consumer, identity: Identity) -> str | None:
    """Why `identity` may not remove `consumer`, or None: what the UI shows beside its button."""
    if not consumer.registered_here:
        return f"{consumer.name} is written by hand in {consumer.path}; remove it there."
    row = registration(service, consumer.product)
    return access.consumer_removal_refusal(identity, row, consumer.registered_by)


# --- checking and rendering ------------------------------------------------------------------


def exposure_path(settings: Settings, name: str) -> Path:
    """The file of the exposure `name`, which must be a valid exposure name (never a path)."""
    if not EXPOSURE_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid exposure name; refusing to build a path from it.")
    return models_dir(settings) / CONSUMERS_FOLDER / f"{name}.yml"


def _relative(settings: Settings, path: Path) -> str:
    return path.resolve().relative_to(settings.dbt_project_dir.resolve()).as_posix()


def derived_name(owner_name: str, product: str) -> str:
    """`<owner>_<product>` as a dbt identifier: lower case, every run of other characters one `_`
    (`Finance-Team` reading `dp_revenue` -> `finance_team_dp_revenue`); a name that would start with a
    digit gets `c_` before it."""
    folded = unicodedata.normalize("NFKD", f"{owner_name}_{product}").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", folded.lower()).strip("_")
    if not slug[:1].isalpha():
        slug = f"c_{slug}"
    return slug[:80].rstrip("_")


def check(request: ConsumerRequest, product: str) -> tuple[str, list[Problem]]:
    """The exposure name the request gets, and every problem with it (none: it may be written)."""
    problems: list[Problem] = []
    owner = request.owner_name
    owner_unsafe = text_problems("owner_name", owner, max_length=100)
    if owner_unsafe:
        problems += owner_unsafe
    elif not PARTY_RE.match(owner):
        problems.append(
            Problem(
                "owner_name",
                f"The consuming team `{_shown(owner)}` is not a team name: use letters, digits, `.`, `_`, `-` "
                "and `@` (e.g. finance-analytics).",
            )
        )
    email = request.owner_email
    email_unsafe = text_problems("owner_email", email, max_length=254)
    if email_unsafe:
        problems += email_unsafe
    elif not EMAIL_RE.match(email):
        problems.append(
            Problem(
                "owner_email",
                f"`{_shown(email)}` is not an e-mail address; give the team's contact address "
                "(e.g. finance@example.com).",
            )
        )
    problems += text_problems("description", request.description, max_length=MAX_DESCRIPTION, multiline=True)
    if isinstance(request.description, str) and not request.description.strip():
        problems.append(
            Problem("description", "Say what the product is used for (e.g. `the weekly revenue board`).")
        )
    problems += _url_problems(request.url)
    for field, value, allowed in (
        ("type", request.type, EXPOSURE_TYPES),
        ("maturity", request.maturity, MATURITIES),
    ):
        if value not in allowed:
            shown = _shown(value) if isinstance(value, str) else repr(value)[:40]
            problems.append(
                Problem(field, f"{field} `{shown}` is not one of {', '.join(allowed)}. Pick one.")
            )
    name = request.name
    if name is None or name == "":
        name = derived_name(owner, product) if isinstance(owner, str) and not owner_unsafe else ""
    elif not isinstance(name, str) or not EXPOSURE_NAME_RE.match(name):
        shown = _shown(name) if isinstance(name, str) else repr(name)[:40]
        problems.append(
            Problem(
                "name",
                f"The exposure name `{shown}` is not a dbt identifier the portal writes: 3 to 80 lower-case "
                f"letters, digits and `_`, starting with a letter (e.g. `{derived_name('finance', product)}`). "
                "Or leave it empty to have it derived from the team and the product.",
            )
        )
    return name, list(dict.fromkeys(problems))


def _url_problems(url: Any) -> list[Problem]:
    unsafe = text_problems("url", url, max_length=MAX_URL)
    if unsafe:
        return unsafe
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return [
            Problem(
                "url",
                f"`{_shown(url)}` is not a link to the dashboard or job: give its full http(s) address "
                "(e.g. https://bi.example.com/dashboards/42).",
            )
        ]
    return []


def _shown(value: str) -> str:
    short = value if len(value) <= 60 else value[:57] + "..."
    return "".join(c if c.isprintable() and c not in "{}`" else "?" for c in short)


def exposure_document(
    name: str, product: str, request: ConsumerRequest, identity: Identity, at: datetime
) -> dict[str, Any]:
    """The properties file of one consumer: a dbt exposure reading `product`."""
    return {
        "version": 2,
        "exposures": [
            {
                "name": name,
                "type": request.type,
                "maturity": request.maturity,
                "url": request.url,
                "description": request.description.strip(),
                "depends_on": [f"ref('{product}')"],
                "owner": {"name": request.owner_name, "email": request.owner_email},
                "config": {
                    "meta": {
                        "registered_by": identity.user,
                        "registered_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "registered_in": "asgard portal",
                    }
                },
            }
        ],
    }


# --- writing ---------------------------------------------------------------------------------


def register(service: PortalService, key: str, request: ConsumerRequest, identity: Identity) -> Consumer:
    """Write `request` as a dbt exposure reading the product `key` (see the module docstring)."""
    access.authorize(identity, "register_consumer")
    entry = _product(service, key)
    name, problems = check(request, entry.name)
    if problems:
        raise ConsumerRefused(problems)
    settings = service.settings
    path = exposure_path(settings, name)
    document = exposure_document(name, entry.name, request, identity, datetime.now(UTC))
    text = properties_text(document)
    unreadable = read_back_problem(text, document)
    if unreadable is not None:
        raise ConsumerRefused(
            [
                Problem(
                    "description",
                    f"The exposure could not be written so that dbt reads it back ({unreadable}).",
                )
            ]
        )
    with project_lock(settings, wait=settings.lock_wait_s):
        _refuse_taken(service, name, path)
        _land(
            service,
            identity,
            path,
            text,
            product=entry.name,
            name=name,
            message=f"Register {name} as a consumer of {entry.name}\n\n{request.owner_name} ({request.type}): "
            f"{request.url}",
        )
    consumer = next((c for c in consumers_of(service, entry.name) if c.name == name), None)
    if consumer is None:  # parsed, yet not in the manifest: say so rather than answer with nothing
        raise Unavailable(f"{name} was written and parsed, but the manifest does not list it; run dbt parse.")
    return consumer


def remove(service: PortalService, key: str, name: str, identity: Identity) -> Consumer:
    """Remove a consumer the portal registered: its file, by a commit, then parse and sync."""
    entry = service.entry(key)
    consumer = next((c for c in consumers_of(service, entry.name) if c.name == name), None)
    if consumer is None:
        raise NotFound(
            f"{entry.name} has no consumer `{_shown(name)}`. List them with GET "
            f"/api/v1/data-products/{entry.name}/consumers."
        )
    if not consumer.registered_here:
        raise ConsumerRefused(
            [
                Problem(
                    "name",
                    f"{name} is written by hand in {consumer.path}, not by the portal; remove it there.",
                )
            ]
        )
    access.authorize_consumer_removal(identity, registration(service, entry.name), consumer.registered_by)
    path = exposure_path(service.settings, name)
    with project_lock(service.settings, wait=service.settings.lock_wait_s):
        _land(
            service,
            identity,
            path,
            None,
            product=entry.name,
            name=name,
            message=f"Remove the consumer {name} of {entry.name}",
        )
    return consumer


def _product(service: PortalService, key: str) -> CatalogEntry:
    entry = service.entry(key)
    if not entry.is_data_product:
        raise ConsumerRefused(
            [
                Problem(
                    "product",
                    f"{entry.name} is not a data product; consumers are registered on data products.",
                )
            ]
        )
    if entry.lifecycle not in LIVE_LIFECYCLES:
        raise ConsumerRefused(
            [
                Problem(
                    "product",
                    f"{entry.name} is {entry.lifecycle}: nothing can read it yet. Register the consumer once "
                    "it is published.",
                )
            ]
        )
    return entry


def _refuse_taken(service: PortalService, name: str, path: Path) -> None:
    """An exposure name is unique in the project (dbt refuses two), and a file is never replaced."""
    manifest = service.artifacts().manifest.raw
    holder = next(
        (raw for raw in (manifest.get("exposures") or {}).values() if raw.get("name") == name), None
    )
    if holder is not None or path.exists():
        where = holder.get("original_file_path") if holder else _relative(service.settings, path)
        raise ConsumerExists(
            Problem(
                "name",
                f"The project already has an exposure named `{name}` (in {where}). Give this consumer another "
                f"name (e.g. `{name}_2`, or one naming the dashboard).",
            )
        )


def _land(
    service: PortalService,
    identity: Identity,
    path: Path,
    text: str | None,
    *,
    product: str,
    name: str,
    message: str,
) -> None:
    """Commit, write (None: remove), parse, merge: the caller holds the project lock. Whatever fails
    before the merge leaves the checkout, main and the manifest as they were."""
    settings = service.settings
    relative = _relative(settings, path)
    before = path.read_text(encoding="utf-8") if path.exists() else None
    repo = commits.repository(settings)
    base = repo.head()
    assert base is not None  # ensure() made main
    branch = f"{commits.BRANCHES}{product}/{BRANCH_PREFIX}{name}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    body = f"{message}\n\nAsked by {identity.user} in the Asgard portal."
    change = {relative: text.encode("utf-8") if text is not None else None}
    sha = repo.commit(branch, change, author=commits.author_of(identity), message=body)

    def put_back() -> None:
        remove_file(path)
        if before is not None:
            write_new_file(path, before, exists=f"{relative} reappeared while it was being restored.")
        repo.delete_branch(branch)

    if text is None:
        remove_file(path)
    else:
        write_new_file(path, text, exists=f"{relative} appeared meanwhile: register the consumer again.")
    parse = run_dbt(settings, ["parse"], lock=False)
    if not parse.ok:
        put_back()  # a failed parse writes no manifest, so the old one still stands
        raise ConsumerRefused(
            [
                Problem(
                    "name",
                    f"dbt refused the project with this change, so nothing was changed: {_dbt_error(parse.log)} "
                    "Fix the project (or the consumer), then try again.",
                )
            ]
        )
    try:
        merged = commits.merge(repo, commits.Committed(branch, sha, base), identity, message=body)
    except PortalError:
        put_back()
        run_dbt(settings, ["parse"], lock=False)  # the manifest back to the files as they are again
        raise
    try:
        repo.push()
    except PortalError as exc:  # main holds the commit; the next push takes it along
        log.warning("%s is committed, but main was not pushed: %s", name, exc)
    action = "consumer.registered" if text is not None else "consumer.removed"
    with service.sessions.begin() as session:
        audit.add_event(
            session,
            identity,
            action,
            "data_product",
            product,
            {"exposure": name, "file": relative, "commit": merged},
        )
    service.reload()


def _dbt_error(log_text: str) -> str:
    """dbt's own words for why it refused: the lines after `Encountered an error`, short."""
    lines = log_text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if "Encountered an error" in line), max(len(lines) - 4, 0)
    )
    said = " ".join(line.strip() for line in lines[start + 1 : start + 4] if line.strip())
    return (said[:400] + "...") if len(said) > 400 else said


__all__ = [
    "EXPOSURE_TYPES",
    "MATURITIES",
    "Consumer",
    "ConsumerExists",
    "ConsumerRefused",
    "ConsumerRequest",
    "check",
    "consumers_of",
    "derived_name",
    "exposure_document",
    "exposure_path",
    "register",
    "removal_refusal",
    "remove",
]
