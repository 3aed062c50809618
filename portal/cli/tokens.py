"""`python -m portal token create|revoke|list` and `python -m portal api`.

Tokens are managed from the command line of the machine that holds the catalog database: whoever
can run this can read the database anyway, so the CLI is the admin. The secret of a new token is
printed once, on standard output alone (`TOKEN=$(python -m portal token create ...)` works);
everything else goes to standard error.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from portal.cli.errors import OK
from portal.settings import ROLE_NAMES


def add_parser(subparsers: Any) -> None:
    """Add `token` and `api` to an argparse subparsers object."""
    token = subparsers.add_parser("token", help="create, revoke or list API bearer tokens")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a token and print its secret (shown only this once)")
    create.add_argument("--user", required=True, help="who the token acts as (a login or e-mail address)")
    create.add_argument("--role", required=True, choices=ROLE_NAMES, help="what it may do")
    create.add_argument("--note", default="", help="what the token is for, shown by `token list`")
    create.set_defaults(func=_create)

    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", type=int, help="the token's id, from `token list`")
    revoke.set_defaults(func=_revoke)

    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    listing.set_defaults(func=_list)

    api = subparsers.add_parser(
        "api", help="start the REST API (default http://127.0.0.1:8000, docs at /docs)"
    )
    api.add_argument("--host", help="address to bind (default PORTAL_API_HOST, 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default PORTAL_API_PORT, 8000)")
    api.set_defaults(func=_api)


def _sessions() -> Any:
    from catalog_db.session import open_catalog
    from portal.settings import Settings

    return open_catalog(Settings.from_env().resolved_catalog_db_url)


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


def _create(args: argparse.Namespace) -> int:
    from portal.auth.access import create_token

    issued = create_token(_sessions(), args.user, args.role, created_by=_operator(), note=args.note)
    print(
        f"Token {issued.info.id} for {issued.info.user} ({issued.info.role}). Its secret follows; it is not "
        "stored and cannot be shown again. Send it as `Authorization: Bearer <secret>`.",
        file=sys.stderr,
    )
    print(issued.secret)
    return OK


def _revoke(args: argparse.Namespace) -> int:
    from portal.auth.access import revoke_token

    info = revoke_token(_sessions(), args.id, revoked_by=_operator())
    print(f"Token {info.id} of {info.user} ({info.role}) is revoked.", file=sys.stderr)
    return OK


def _list(args: argparse.Namespace) -> int:
    from portal.auth.access import list_tokens

    tokens = list_tokens(_sessions(), include_revoked=args.all)
    if not tokens:
        print(
            "No tokens. Create one with: python -m portal token create --user NAME --role viewer",
            file=sys.stderr,
        )
        return OK
    print(f"{'id':>4}  {'user':<24} {'role':<8} {'created':<16} {'last used':<16} {'revoked':<16} note")
    for t in tokens:
        when = [
            f"{moment:%Y-%m-%d %H:%M}" if moment else "-"
            for moment in (t.created_at, t.last_used_at, t.revoked_at)
        ]
        print(f"{t.id:>4}  {t.user:<24} {t.role:<8} {when[0]:<16} {when[1]:<16} {when[2]:<16} {t.note}")
    return OK


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from portal.api import create_app
    from portal.auth.access import anonymous_role
    from portal.settings import Settings

    settings = Settings.from_env()
    host, port = args.host or settings.api_host, args.port or settings.api_port
    role = anonymous_role(settings, host)
    if role is None and settings.api_anonymous not in {"off", "auto"}:
        print(
            f"note: PORTAL_API_ANONYMOUS={settings.api_anonymous} is ignored: {host} is not a loopback address.",
            file=sys.stderr,
        )
    access = (
        f"calls from 127.0.0.1 without a token act as {settings.local_user} ({role})"
        if role
        else "every call needs a token"
    )
    print(f"Asgard API on http://{host}:{port} (docs at /docs); {access}.", file=sys.stderr)
    if settings.auth == "proxy":
        print(
            f"Users signed in by the proxy at {', '.join(settings.auth_proxy_addresses) or '(none set)'} are honoured.",
            file=sys.stderr,
        )
    # proxy_headers=False: the peer address must be the TCP peer, which decides local access and
    # whether a sign-in proxy's headers count; uvicorn would otherwise take X-Forwarded-For from 127.0.0.1.
    uvicorn.run(create_app(settings, host=host), host=host, port=port, log_level="info", proxy_headers=False)
    return OK
