"""The REST API: a second face over the same service layer as the Streamlit pages.

`create_app()` builds the FastAPI application: one router per resource, one error shape
(RFC 9457 problems, see errors.py), the request-shape rules of limits.py (size, JSON bodies, no
tokens in URLs), and the OpenAPI document at /openapi.json with every model and error response,
browsable at /docs with Swagger UI served from this server (the portal works offline: no page
loads anything from another host; ReDoc, which would load its script and fonts from CDNs, is off).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from portal.api import errors, limits
from portal.api.deps import known_query_parameters
from portal.api.gate import SignedInOnly
from portal.api.limits import BodySizeLimit, JsonBodiesOnly, NoCredentialsInUrls
from portal.api.routers import access, consumers, contracts, products, proposals, runs, system
from portal.auth.provider_tokens import ProviderKeys
from portal.catalog import access_requests
from portal.jobs import Jobs
from portal.service import PortalService
from portal.settings import Settings

# How long shutdown waits for running builds before leaving them to the process's end.
SHUTDOWN_WAIT_S = 120.0
DOCS_ASSETS = "/docs/assets"
# Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes), as the fastapi-offline package ships it.
DOCS_FILES = Path(fastapi_offline.__file__).parent / "static"
# The docs page may load only from this server: a browser enforces it even if a script tried more.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

DESCRIPTION = """
Browse, create, refresh and query the portal's data products.

**Authentication**: send `Authorization: Bearer <token>` (never in the URL: `?access_token=` is
refused); an admin creates tokens with `python -m portal token create --user NAME --role
viewer|creator|reviewer|admin`. On the embedded default, calls from this machine without a token act as
the local user (`PORTAL_API_ANONYMOUS`), if they come directly (no proxy headers), address it as
localhost, 127.0.0.1 or [::1], and are not sent by a page of another site (`Origin`). Behind a
trusted sign-in proxy, its user headers identify the caller. Every path needs a caller, these docs,
`/openapi.json` and `/health` included: a load balancer's probe sends a viewer token.

**Bodies** are JSON: a POST, PATCH or DELETE with another `Content-Type` is refused (415).

**Errors** are `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail`
and `errors` (each field or SQL position at fault).
"""


def create_app(
    settings: Settings | None = None, *, host: str | None = None, service: PortalService | None = None
) -> FastAPI:
    """The API over `settings` (default: the environment).

    `host` is the address the server binds; a non-loopback one turns anonymous access off.
    `service` lets a process share one PortalService between faces (and tests reuse one).
    """
    settings = settings or Settings.from_env()
    service = service or PortalService(settings)
    jobs = Jobs(service)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs.recover()  # runs a portal that died left `running`, and their products `building`
        access_requests.resume(service)  # grants that ended meanwhile close; the next end is watched
        yield
        jobs.join(SHUTDOWN_WAIT_S)  # a build killed halfway leaves a product `building`

    app = FastAPI(
        title="Asgard data product portal",
        version="v1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters)],
        docs_url=None,  # served below, from local assets
        redoc_url=None,
    )
    # The app's settings decide access (a shared service may have been built with others).
    app.state.settings, app.state.service, app.state.jobs, app.state.bind_host = settings, service, jobs, host
    # The identity provider's keys, for its access tokens (fetched on first use, then cached).
    app.state.provider_keys = ProviderKeys(settings.oidc_issuer) if settings.oidc_issuer else None
    errors.install(app)
    # The last added runs first: a token in the URL is refused (and redacted) before anything else,
    # then a caller without an identity, before any path is even looked up.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(JsonBodiesOnly)
    app.add_middleware(SignedInOnly)
    app.add_middleware(NoCredentialsInUrls)
    limits.redact_access_log()
    for module in (system, products, contracts, consumers, runs, proposals, access):
        app.include_router(module.router)
    _serve_docs(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = errors.problem_openapi(FastAPI.openapi(app))
            products.document_limits(schema, settings)
            limits.document_refusals(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _serve_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from this server's own copy, under a policy that forbids other hosts."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_FILES), name="docs-assets")

    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            # Swagger UI would otherwise show a badge fetched from its online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


__all__ = ["create_app"]
