"""`python -m portal ui`: start the Streamlit portal, refusing what would let people in unseen.

It checks the sign-in first (portal/auth/sign_in.py: `local` only on a loopback address, `oidc`
and `proxy` only with what they need), writes Streamlit's [auth] secrets for OIDC from the
PORTAL_OIDC_* settings into var/secrets (readable by its owner only, never in git), and then
becomes `streamlit run portal/ui/app.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from portal.cli.errors import CANNOT_START

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


def _ui(args: argparse.Namespace) -> int:
    from portal.auth.oidc import streamlit_auth_secrets
    from portal.auth.sign_in import ui_start_problem
    from portal.settings import ROOT, Settings

    settings = Settings.from_env()
    problem = ui_start_problem(settings, args.host)
    if problem:
        print(f"error: the portal will not start: {problem}", file=sys.stderr)
        return CANNOT_START
    streamlit = Path(sys.executable).with_name("streamlit")
    argv = [str(streamlit), "run", str(APP), "--server.address", args.host, "--server.port", str(args.port)]
    env = dict(os.environ)
    # The peer address decides whose sign-in headers count: never let the server rewrite it from
    # X-Forwarded-For (uvicorn trusts that from 127.0.0.1 unless told otherwise).
    env["FORWARDED_ALLOW_IPS"] = ""
    if settings.auth == "oidc":
        secrets_file = ROOT / "var" / "secrets" / "streamlit-secrets.toml"
        secrets_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(streamlit_auth_secrets(settings))
        env["STREAMLIT_SECRETS_FILES"] = str(secrets_file)
    mode = {"local": "the local user, no sign-in", "oidc": "OpenID Connect", "proxy": "the sign-in proxy"}
    print(
        f"Asgard portal on http://{args.host}:{args.port}; sign-in: {mode[settings.auth]}.", file=sys.stderr
    )
    sys.stderr.flush()
    os.execve(str(streamlit), argv, env)
    return CANNOT_START  # not reached: execve replaces this process


def add_parser(commands: Any) -> None:
    ui = commands.add_parser("ui", help="start the Streamlit portal (make run), checking its sign-in first")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    ui.set_defaults(func=_ui)
