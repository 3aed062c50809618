"""portal.auth.access without a server: the role rules, tokens stored hashed, anonymous access, the CLI."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog_db.models import ApiToken, AuditEvent
from catalog_db.session import open_catalog
from portal.auth import access as auth
from portal.auth.access import AuthenticationFailed, PermissionDenied, Principal, authorize
from portal.auth.identity import Identity
from portal.cli import tokens as auth_cli
from portal.cli.errors import run_command
from portal.errors import InvalidInput, NotFound
from portal.settings import Settings


@dataclass
class Row:
    name: str
    created_by: str
    owner: str | None


MINE = Row("dp_mine", created_by="carl", owner="sales-team")
TEAMS = Row("dp_team", created_by="someone", owner="carl")
THEIRS = Row("dp_theirs", created_by="olga", owner="other-team")
VIEWER, CREATOR, ADMIN = (
    Principal("vera", "token", "viewer"),
    Principal("carl", "token", "creator"),
    Principal("ada", "token", "admin"),
)


@pytest.mark.parametrize(
    ("who", "action", "product", "allowed"),
    [
        (VIEWER, "read", None, True),
        (VIEWER, "query", THEIRS, True),
        (VIEWER, "create", None, False),
        (VIEWER, "run", MINE, False),
        (CREATOR, "create", None, True),
        (CREATOR, "edit", MINE, True),
        (CREATOR, "run", TEAMS, True),  # the owner counts as much as the creator
        (CREATOR, "deprecate", THEIRS, False),
        (CREATOR, "run", None, False),  # a model that is no registered product: admins only
        (CREATOR, "manage_tokens", None, False),
        (ADMIN, "deprecate", THEIRS, True),
        (ADMIN, "run", None, True),
        (ADMIN, "manage_tokens", None, True),
        (Identity("local-user", "local"), "edit", THEIRS, True),  # the embedded default's one user
        (Identity("someone", "oidc"), "create", None, False),  # unknown kinds only view
    ],
)
def test_the_role_rules(who: Identity, action: str, product: Row | None, allowed: bool) -> None:
    assert auth.may(who, action, product) is allowed


def test_refusals_say_who_may_and_what_to_do() -> None:
    with pytest.raises(PermissionDenied, match=r"vera has the viewer role.*--user vera --role creator"):
        authorize(VIEWER, "create")
    with pytest.raises(PermissionDenied, match="created by olga and is owned by other-team"):
        authorize(CREATOR, "edit", THEIRS)
    with pytest.raises(ValueError, match="Unknown action"):
        authorize(ADMIN, "launch")


@pytest.fixture
def sessions(tmp_path: Path) -> object:
    return open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")


def test_tokens_are_stored_hashed_and_revocable(sessions: object) -> None:
    issued = auth.create_token(sessions, "alice", "creator", created_by="tests", note="ci")  # type: ignore[arg-type]
    assert issued.secret.startswith("asg_") and len(issued.secret) > 40
    with sessions() as session:  # type: ignore[operator]
        row = session.scalar(sa.select(ApiToken))
        assert row.secret_sha256 == hashlib.sha256(issued.secret.encode()).hexdigest()
        assert issued.secret not in {str(v) for v in vars(row).values()}
    found = auth.authenticate(sessions, issued.secret)  # type: ignore[arg-type]
    assert (found.user, found.role, found.kind, found.token_id) == (
        "alice",
        "creator",
        "token",
        issued.info.id,
    )
    assert [t.id for t in auth.list_tokens(sessions)] == [issued.info.id]  # type: ignore[arg-type]

    auth.revoke_token(sessions, issued.info.id, revoked_by="tests")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationFailed, match="revoked"):
        auth.authenticate(sessions, issued.secret)  # type: ignore[arg-type]
    assert auth.list_tokens(sessions) == []  # type: ignore[arg-type]
    assert len(auth.list_tokens(sessions, include_revoked=True)) == 1  # type: ignore[arg-type]
    with sessions() as session:  # type: ignore[operator]
        actions = list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["token.created", "token.revoked"]


def test_token_input_is_checked(sessions: object) -> None:
    with pytest.raises(InvalidInput, match="Unknown role"):
        auth.create_token(sessions, "alice", "owner", created_by="tests")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not a valid user name"):
        auth.create_token(sessions, "alice; drop table", "viewer", created_by="tests")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not a valid user name"):  # `$` matched before a final newline
        auth.create_token(sessions, "alice\n", "viewer", created_by="tests")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no token 42"):
        auth.revoke_token(sessions, 42, revoked_by="tests")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationFailed, match="not known"):
        auth.authenticate(sessions, "asg_" + "x" * 43)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "warehouse", "bind", "role"),
    [
        ("auto", "duckdb", "127.0.0.1", "creator"),
        ("auto", "duckdb", None, "creator"),
        ("auto", "trino", "127.0.0.1", None),
        ("viewer", "trino", "::1", "viewer"),
        ("creator", "duckdb", "0.0.0.0", None),
        ("creator", "duckdb", "10.1.2.3", None),
        ("auto", "duckdb", "localhost", "creator"),
        ("off", "duckdb", "127.0.0.1", None),
    ],
)
def test_anonymous_role(setting: str, warehouse: str, bind: str | None, role: str | None) -> None:
    settings = Settings.from_env({"PORTAL_API_ANONYMOUS": setting, "PORTAL_WAREHOUSE": warehouse})
    assert auth.anonymous_role(settings, bind) == role


def test_anonymous_calls_come_from_loopback_and_not_through_a_proxy() -> None:
    settings = Settings.from_env({})
    here = [("host", "127.0.0.1:8000")]  # a loopback Host is needed too (tests/api/test_local_access.py)
    local = auth.anonymous_principal(settings, bind_host="127.0.0.1", client_host="127.0.0.1", headers=here)
    assert (local.user, local.kind, local.role) == (settings.local_user, "local", "creator")
    for client, headers in (
        ("192.0.2.7", here),
        ("127.0.0.1", [*here, ("X-Forwarded-For", "203.0.113.9")]),
        (None, here),
    ):
        with pytest.raises(AuthenticationFailed):
            auth.anonymous_principal(settings, bind_host="127.0.0.1", client_host=client, headers=headers)


def test_the_token_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTAL_CATALOG_DB_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    parser = argparse.ArgumentParser()
    auth_cli.add_parser(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return run_command(args.func, args)  # as `python -m portal` runs it

    assert run("token", "create", "--user", "alice", "--role", "creator", "--note", "laptop") == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("asg_") and secret not in err and "cannot be shown again" in err
    assert run("token", "list") == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "creator" in listing and "laptop" in listing and secret not in listing
    assert run("token", "revoke", "1") == 0
    assert run("token", "revoke", "9") == 2
    assert "no token 9" in capsys.readouterr().err
    assert run("token", "create", "--user", "bad user", "--role", "viewer") == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["token", "create", "--user", "alice", "--role", "owner"])
