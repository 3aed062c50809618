"""What routes get injected: the shared service, the background jobs, and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portal.api.errors import ApiProblem
from portal.api.schemas import FieldError
from portal.auth import access as auth
from portal.auth.provider_tokens import looks_like_jwt, verify
from portal.auth.proxy import proxy_identity
from portal.jobs import Jobs
from portal.service import PortalService

# auto_error=False: a missing token may be fine (anonymous local access); `identity` decides.
CALLER = "caller"  # request.state's key for what resolve_caller found (gate.SignedInOnly sets it)
bearer = HTTPBearer(
    auto_error=False,
    description="A token from `python -m portal token create --user NAME --role viewer|creator|reviewer|admin`.",
)


def get_service(request: Request) -> PortalService:
    service: PortalService = request.app.state.service
    return service


def get_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


def _bearer_holder(request: Request, secret: str) -> auth.Principal:
    keys = request.app.state.provider_keys
    if keys is not None and looks_like_jwt(secret):
        return verify(request.app.state.settings, keys, secret)
    return auth.authenticate(get_service(request).sessions, secret)


def resolve_caller(request: Request) -> tuple[auth.Principal | None, auth.Principal]:
    """(the bearer token's holder or None, the caller) for any request; 401 when there is no caller.

    The holder is a portal token's, or the identity provider's access token's when
    PORTAL_OIDC_ISSUER is set. Without a token, the caller is the user a trusted sign-in proxy
    vouches for, or the local user where that is allowed. Both are decided in the core: the
    proxy's headers count only from its own addresses (`proxy.proxy_identity`), and local access
    from the bind, the peer's address and every header (proxies, Host, Origin:
    `auth.anonymous_principal`). The peer is the TCP peer: the API's server never rewrites it
    from forwarding headers (portal/cli/main.py serves it so). gate.SignedInOnly calls this once
    per request, before any route.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise auth.AuthenticationFailed(
                "The Authorization header must be `Bearer <token>`. Create a token with: "
                "python -m portal token create --user NAME --role viewer"
            )
        holder = _bearer_holder(request, secret.strip())
        return holder, holder
    settings = request.app.state.settings
    client_host = request.client.host if request.client else None
    signed_in = proxy_identity(settings, client_host=client_host, headers=request.headers.items())
    if signed_in is not None:
        return None, signed_in
    local = auth.anonymous_principal(
        settings,
        bind_host=request.app.state.bind_host,
        client_host=client_host,
        headers=request.headers.items(),
    )
    return None, local


def _resolved(request: Request) -> tuple[auth.Principal | None, auth.Principal]:
    found: tuple[auth.Principal | None, auth.Principal] | None = getattr(request.state, CALLER, None)
    return found if found is not None else resolve_caller(request)


def token_holder(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> auth.Principal | None:
    """The bearer token's holder, None without one (`_credentials` documents the scheme in OpenAPI)."""
    return _resolved(request)[0]


def identity(
    request: Request, _holder: Annotated[auth.Principal | None, Depends(token_holder)]
) -> auth.Principal:
    """Who calls: decided once per request by the gate (`resolve_caller`)."""
    return _resolved(request)[1]


def known_query_parameters(request: Request) -> None:
    """Refuse query parameters the endpoint does not take: `?limt=5` must not quietly mean the default.

    What an endpoint takes is read from the app's own OpenAPI document, so it cannot disagree with it.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    if getattr(request.app.state, "query_parameters", None) is None:
        request.app.state.query_parameters = {
            (path, method.upper()): {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            for path, item in request.app.openapi()["paths"].items()
            for method, operation in item.items()
        }
    known: set[str] = request.app.state.query_parameters.get((route.path_format, request.method), set())
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise ApiProblem(
            422,
            f"Unknown query parameter {', '.join(map(repr, unknown))}; this endpoint takes {takes}.",
            [FieldError(field=name, message="not a parameter of this endpoint") for name in unknown],
        )


Service = Annotated[PortalService, Depends(get_service)]
Background = Annotated[Jobs, Depends(get_jobs)]
Caller = Annotated[auth.Principal, Depends(identity)]
TokenHolder = Annotated[auth.Principal | None, Depends(token_holder)]
