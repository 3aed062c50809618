"""The REST API: a second face over the same service layer as the Streamlit pages.

`create_app()` builds the FastAPI application: one router per resource, one error shape
(RFC 9457 problems, see errors.py), a request size limit, and the OpenAPI document at
/openapi.json (browsable at /docs) with every model and error response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from portal.api import errors
from portal.api.deps import known_query_parameters
from portal.api.limits import BodySizeLimit
from portal.api.routers import products, runs, system
from portal.jobs import Jobs
from portal.service import PortalService
from portal.settings import Settings

# How long shutdown waits for running builds before leaving them to the process's end.
SHUTDOWN_WAIT_S = 120.0

DESCRIPTION = """
Browse, create, refresh and query the portal's data products.

**Authentication**: send `Authorization: Bearer <token>`; an admin creates tokens with
`python -m portal token create --user NAME --role viewer|creator|admin`. On the embedded
default, calls from 127.0.0.1 without a token act as the local user (`PORTAL_API_ANONYMOUS`).

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
        yield
        jobs.join(SHUTDOWN_WAIT_S)  # a build killed halfway leaves a product `building`

    app = FastAPI(
        title="Asgard data product portal",
        version="v1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters)],
    )
    # The app's settings decide access (a shared service may have been built with others).
    app.state.settings, app.state.service, app.state.jobs, app.state.bind_host = settings, service, jobs, host
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    for module in (system, products, runs):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = errors.problem_openapi(FastAPI.openapi(app))
            products.document_limits(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


__all__ = ["create_app"]
