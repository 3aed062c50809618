"""What the browser tests share (tests/e2e, tests/sso): Debian's Chromium under Playwright (the
`browser` fixture, offered to every test by tests/conftest.py), a free port, and a portal
started as `make run` starts it (`python -m portal ui`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from portal.settings import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (.ci/run does this).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@contextmanager
def started_portal(
    environ: Mapping[str, str], log: Path, *, redirect_path: str | None = None
) -> Iterator[str]:
    """`python -m portal ui` on a free loopback port with `environ` over the process's own; its URL
    once Streamlit answers its health check (the test fails with the log's end if it never does).
    `redirect_path`: OIDC's redirect URI is the portal's URL and this path."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **environ, "STREAMLIT_SERVER_HEADLESS": "true"}
    if redirect_path is not None:
        env["PORTAL_OIDC_REDIRECT_URI"] = url + redirect_path
    argv = [sys.executable, "-m", "portal", "ui", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the portal did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
