"""The API's fixtures: a private copy of the session's demo per module, an app over it, tokens,
and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.api import create_app
from portal.auth.access import create_token, revoke_token
from portal.settings import Settings
from tests.conftest import copy_demo

LOCAL = ("127.0.0.1", 50000)  # a TestClient caller on this machine (anonymous access applies)
LOCAL_URL = "http://127.0.0.1:8000"  # and the address it calls: local access needs a loopback Host


@pytest.fixture(scope="module")
def api_env(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A copy of the demo (warehouse, catalog, artifacts, dbt project) this module may write to."""
    return copy_demo(demo_env, tmp_path_factory.mktemp("api") / "portal")


@pytest.fixture(scope="module")
def api_settings(api_env: dict[str, str]) -> Settings:
    return Settings.from_env(api_env)


@pytest.fixture(scope="module")
def app(api_settings: Settings) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    """Calls from a non-loopback address ("testclient"): every call needs a token.

    raise_server_exceptions=False: a 500 is then a response the tests see and refuse.
    """
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def local(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, client=LOCAL, base_url=LOCAL_URL, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(app: FastAPI) -> dict[str, str]:
    """Bearer headers by who: viewer, creator, other (a second creator), admin, revoked."""
    sessions = app.state.service.sessions
    issued = {
        "viewer": create_token(sessions, "vera", "viewer", created_by="tests"),
        "creator": create_token(sessions, "carl", "creator", created_by="tests"),
        "other": create_token(sessions, "olga", "creator", created_by="tests"),
        "admin": create_token(sessions, "ada", "admin", created_by="tests"),
        "revoked": create_token(sessions, "rex", "admin", created_by="tests"),
    }
    revoke_token(sessions, issued["revoked"].info.id, revoked_by="tests")
    return {who: token.secret for who, token in issued.items()}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` in a real uvicorn server on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port, and we keep the socket: no race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(150)  # shutdown waits for running builds (create_app's lifespan)
        sock.close()


def wait_for_run(get: Callable[[str], Any], run_id: int, timeout: float = 600) -> dict[str, Any]:
    """Poll GET /api/v1/runs/{id} (with `get`, a client's get) until the run has finished."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = get(f"/api/v1/runs/{run_id}").json()
        if body["finished"]:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {body['status']} after {timeout} s")
        time.sleep(0.5)
