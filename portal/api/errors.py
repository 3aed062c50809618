"""One error shape for the whole API: RFC 9457 `application/problem+json`.

Every refusal carries `type`, `title`, `status`, `detail` (the core's own actionable message,
the same words the UI shows) and `errors`, the fields or SQL positions at fault. The core's
error kinds are mapped to statuses here, in one table; anything unmapped is a bug, logged with
its traceback and answered with a 500 problem that says so, never with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal.api.schemas import FieldError, Position, ProblemDetails
from portal.creation.spec import NAME_RE, Problem
from portal.errors import Kind, PortalError

log = logging.getLogger("portal.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# The API's field names where they differ from the spec's (the UI's form fields).
API_FIELDS = {"sql": "source_query"}

TITLES = {
    400: "Bad request",
    401: "Authentication needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Validation failed",
    500: "Internal error",
    502: "Warehouse error",
    503: "Unavailable",
    504: "Query timeout",
}
SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "validation",
    500: "internal",
    502: "warehouse-error",
    503: "unavailable",
    504: "timeout",
}

# The one table from the core's error kinds (portal/errors.py) to HTTP statuses.
STATUS_OF_KIND: dict[Kind, int] = {
    Kind.INVALID: 400,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,  # e.g. registered but not built: build it, then ask again
    Kind.UPSTREAM: 502,
    Kind.UNAVAILABLE: 503,
    Kind.BUSY: 503,
    Kind.TIMEOUT: 504,
}
RETRY_AFTER_BUSY_S = 5


class ApiProblem(PortalError):
    """Raised by routes for a refusal about the request itself (its shape, its body, its headers),
    which the core never sees; it carries its HTTP status, and its handler is the more specific
    one, so the kind table above does not apply to it."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail, problems=errors)
        self.status, self.detail, self.errors, self.headers = status, detail, list(errors), headers


def field_errors(problems: Iterable[Problem]) -> list[FieldError]:
    return [
        FieldError(
            field=API_FIELDS.get(p.field, p.field),
            message=p.message,
            position=Position(line=p.position[0], column=p.position[1]) if p.position else None,
        )
        for p in problems
    ]


def refusal(problems: Sequence[Problem], name: str) -> ApiProblem:
    """A creation or edit refused by the core: 409 when the name is taken, 503 when the warehouse
    could not be reached or the project's git repository cannot take commits, else 422 with every
    problem."""
    if any(p.field == "name" for p in problems) and NAME_RE.match(name):
        status = 409  # a well-formed name refused: it collides with an existing product or model
    elif any(p.field in ("warehouse", "project") for p in problems):  # the platform's fault, not the input's
        status = 503
    else:
        status = 422
    return ApiProblem(status, " ".join(p.message for p in problems), field_errors(problems))


def problem_response(
    request: Request,
    status: int,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ProblemDetails(
        type=f"urn:asgard:problem:{SLUGS.get(status, 'error')}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=list(errors),
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _errors_of(exc: PortalError) -> list[FieldError]:
    return field_errors(p for p in exc.problems if isinstance(p, Problem))


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    found = []
    for error in exc.errors():
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")
        ]
        found.append(FieldError(field=".".join(location) or "body", message=str(error.get("msg", "invalid"))))
    return found


def core_problem(request: Request, exc: PortalError) -> JSONResponse:
    """The problem for a refusal of the core: its kind decides the status."""
    status = STATUS_OF_KIND[exc.kind]
    headers = None
    if exc.kind is Kind.UNAUTHENTICATED:
        headers = {"WWW-Authenticate": 'Bearer realm="asgard"'}
    elif exc.kind is Kind.BUSY:
        headers = {"Retry-After": str(RETRY_AFTER_BUSY_S)}
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return problem_response(request, status, str(exc), _errors_of(exc), headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a problem."""

    async def api_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(request, exc.status, exc.detail, exc.errors, exc.headers)

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        detail = "The request is not valid: " + "; ".join(f"{e.field}: {e.message}" for e in errors) + "."
        return problem_response(request, 422, detail, errors)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"There is no endpoint {request.url.path}; see /docs for the API's endpoints."
        if exc.status_code == 400:  # FastAPI could not even decode the body: as invalid as bad JSON
            message = "The body is not JSON: send UTF-8 JSON with Content-Type: application/json."
            return problem_response(request, 422, message, [FieldError(field="body", message=message)])
        return problem_response(request, exc.status_code, detail, headers=dict(exc.headers or {}) or None)

    async def core_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PortalError)
        return core_problem(request, exc)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(
            request,
            500,
            f"Something unexpected went wrong ({type(exc).__name__}). The details are in the API's log; "
            "please report it with the time of the request.",
        )

    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(PortalError, core_error)
    app.add_exception_handler(Exception, unexpected)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each error status with the problem model."""
    return {status: {"model": ProblemDetails, "description": TITLES[status]} for status in statuses}


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Serve every documented error as application/problem+json (FastAPI writes application/json),
    including the 422 FastAPI adds by itself to routes with parameters, and document a 422 everywhere."""
    problem_ref = "#/components/schemas/ProblemDetails"
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            # Unknown query parameters are refused on every endpoint (deps.known_query_parameters).
            operation["responses"].setdefault(
                "422",
                {
                    "description": TITLES[422],
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": problem_ref}}},
                },
            )
            for response in operation.get("responses", {}).values():
                content = response.get("content") or {}
                media = content.get("application/json") or {}
                ref = media.get("schema", {}).get("$ref", "")
                if ref.endswith(("/ProblemDetails", "/HTTPValidationError")):
                    content[PROBLEM_MEDIA_TYPE] = {"schema": {"$ref": problem_ref}}
                    del content["application/json"]
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
