"""Nothing answers a caller without an identity: not a product, not /docs, /openapi.json,
/health or /api/v1/version, not even a 404 for a path that does not exist.

A pure ASGI middleware, so it covers every path, the mounted docs assets included. It decides
who calls once per request (`deps.resolve_caller`: a token, a trusted sign-in proxy's headers, or
the local user where local access is allowed) and leaves the answer in the request's state for
the routes' dependencies. On the embedded default the local user calling 127.0.0.1 is an
identity, so /health and /docs answer there without a token; on a shared portal (a non-loopback
bind, or with local access off) a load balancer's probe sends a viewer token like anyone else.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.api.deps import CALLER, resolve_caller
from portal.api.errors import core_problem
from portal.errors import PortalError


class SignedInOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            # A token is checked against the catalog database: off the event loop.
            found = await run_in_threadpool(resolve_caller, request)
        except PortalError as refused:
            response: Any = core_problem(request, refused)  # 401, or 503 for a provider down
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER] = found
        await self.app(scope, receive, send)
