"""What the browser tests share (tests/e2e, tests/sso): Debian's Chromium under Playwright (the
`browser` fixture, offered to every test by tests/conftest.py), a free port, and a portal
started as `make run` starts it (`python -m portal ui`).

The portal works offline, and every browser test holds it to that: each context and page the
`browser` fixture opens carries an `OffHostGuard`, which records every request (and web socket, and
load a Content-Security-Policy refused) to a host other than 127.0.0.1, any port, and aborts it, so
nothing leaves the machine; the test then fails naming those URLs. `data:`, `blob:` and `about:`
URLs never leave the page and are allowed."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from portal.settings import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Any URL but one of 127.0.0.1 (the portal, the API and the test Keycloak: any port) or one that
# never leaves the page (data:, blob:, about:). A regular expression rather than a function, so that
# Playwright's driver matches it itself: the portal's own requests and its web socket are then not
# routed through Python at all (a function would intercept and relay every one, and slow the pages).
OFF_HOST = re.compile(
    r"^(?!(?:data|blob|about):)(?![a-z][a-z0-9+.-]*://127\.0\.0\.1(?::[0-9]+)?(?:[/?#]|$))", re.IGNORECASE
)
# A load the page's Content-Security-Policy refused never reaches the network (nor the routes), so
# a listener in every document reports it: a page that tries to fetch off-host fails as one that did.
REFUSALS_BINDING = "__offHostGuardRefused"
REPORT_REFUSALS = (
    "document.addEventListener('securitypolicyviolation', (event) => "
    f"window.{REFUSALS_BINDING} && window.{REFUSALS_BINDING}(String(event.blockedURI)));"
)


def is_off_host(url: str) -> bool:
    """Whether the browser would fetch `url` from another host than 127.0.0.1."""
    return OFF_HOST.match(url) is not None


class OffHostGuard:
    """Every off-host request of the contexts it is installed on: recorded (`urls`) and aborted."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def install(self, context: Any) -> None:
        context.on("request", lambda request: self._record(request.url))  # routed ones included
        context.route(OFF_HOST, lambda route: route.abort("blockedbyclient"))
        context.route_web_socket(OFF_HOST, self._refuse_web_socket)
        context.expose_binding(REFUSALS_BINDING, lambda _source, url: self._record(url))
        context.add_init_script(script=REPORT_REFUSALS)

    def _record(self, url: str) -> None:
        # A refusal's blockedURI may be "inline" or "eval" (no fetch at all): only URLs count.
        if "://" in url and is_off_host(url) and url not in self.urls:
            self.urls.append(url)

    def _refuse_web_socket(self, socket: Any) -> None:
        self._record(socket.url)
        socket.close(code=1008, reason="off-host: the browser tests allow only 127.0.0.1")

    def check(self) -> None:
        if self.urls:
            pytest.fail(
                "the browser was asked to fetch from another host than 127.0.0.1 (the portal must work"
                " offline):\n" + "\n".join(self.urls),
                pytrace=False,
            )


class GuardedBrowser:
    """Playwright's Browser whose every context and page carries one OffHostGuard. `new_page`
    gives the page a context of its own, as Playwright's does; `close_all` closes them."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self.guard = OffHostGuard()
        self._contexts: list[Any] = []

    def new_context(self, **options: Any) -> Any:
        context = self._browser.new_context(**options)
        self.guard.install(context)
        self._contexts.append(context)
        return context

    def new_page(self, **options: Any) -> Any:
        return self.new_context(**options).new_page()

    def close_all(self) -> None:
        for context in self._contexts:
            context.close()  # a no-op for one the test closed

    def __getattr__(self, name: str) -> Any:  # version, is_connected, ...
        return getattr(self._browser, name)


@pytest.fixture
def browser() -> Iterator[GuardedBrowser]:
    """A Chromium for one test; after it, the test fails if any page asked for another host."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (.ci/run does this).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        guarded = GuardedBrowser(launched)
        try:
            yield guarded
            guarded.close_all()
        finally:
            launched.close()
        guarded.guard.check()


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
