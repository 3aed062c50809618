"""What a request must look like before any route sees it: pure ASGI middlewares, so they cover
every path (the docs included), and refuse with the API's one problem shape.

- `BodySizeLimit`: a body over the maximum is refused with 413. It also covers bodies sent without
  a Content-Length (chunked), by counting what arrives and stopping at the limit. Bodies are small
  (a product spec is at most a few hundred kilobytes), so the accepted body is buffered and replayed.
- `JsonBodiesOnly`: a state-changing call (POST, PUT, PATCH, DELETE) with a body that is not JSON is
  refused with 415. A web page of another site can send a `text/plain`, form or multipart body
  without asking the API first (a CORS "simple request"); JSON it cannot, so this closes CSRF by
  simple requests for every caller. Calls without a body (`POST .../run`) pass.
- `NoCredentialsInUrls`: a token in the query string (`?access_token=`) is refused with 400, and
  redacted from the request before the server's access log writes its line; `RedactCredentials`
  scrubs whatever else looks like a token from that log (a token pasted into a path).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.api.errors import PROBLEM_MEDIA_TYPE, TITLES, problem_response
from portal.auth.access import TOKEN_PREFIX

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Query parameters that carry credentials by convention (OAuth's access_token, API keys, ...).
CREDENTIAL_PARAMETERS = frozenset(
    {
        "access_token",
        "accesstoken",
        "token",
        "bearer",
        "id_token",
        "jwt",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "auth",
        "authorization",
        "password",
        "secret",
    }
)
# What an API token looks like (portal.auth.access: the prefix and 43 URL-safe characters),
# also percent-encoded, wherever it appears.
TOKEN_LIKE = re.compile(re.escape(TOKEN_PREFIX).replace("_", "(?:_|%5[Ff])") + r"[A-Za-z0-9_%-]{20,}")
REDACTED = "[redacted]"
ACCESS_LOGGER = "uvicorn.access"


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: let the app see the disconnect
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        response: Any = problem_response(
            Request(scope),
            413,
            f"The request body is larger than {self.max_bytes:,} bytes, the most this API accepts "
            "(PORTAL_API_MAX_BODY_BYTES). Send a shorter query or fewer column descriptions.",
        )
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class JsonBodiesOnly:
    """415 for a POST, PUT, PATCH or DELETE whose body is not `application/json` (or `+json`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in STATE_CHANGING:
            headers = Headers(scope=scope)
            length = headers.get("content-length")
            has_body = "transfer-encoding" in headers or (
                length is not None and length.strip().lstrip("0") != ""
            )
            types = headers.getlist("content-type")
            if has_body and (len(types) != 1 or not is_json(types[0])):
                sent = (
                    f"`Content-Type: {_shown(types[0])}`"
                    if len(types) == 1
                    else ("no Content-Type" if not types else f"{len(types)} Content-Type headers")
                )
                response: Any = problem_response(
                    Request(scope),
                    415,
                    f"This API takes JSON bodies only: send the body as `Content-Type: application/json` "
                    f"(this one has {sent}). A call that needs no body may send none.",
                )
                await response(scope, _no_receive, send)
                return
        await self.app(scope, receive, send)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > 5))


class NoCredentialsInUrls:
    """400 for a token in the query string: URLs end up in access logs, proxies' logs and browser
    history, so a token there is refused whatever else the call carries, and never logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        query = scope["query_string"].decode("latin-1")
        found = sorted(
            {name for name, value in parse_qsl(query, keep_blank_values=True) if _is_credential(name, value)}
        )
        if not found:
            await self.app(scope, receive, send)
            return
        # The server writes its access line from this same scope once the answer is sent.
        scope["query_string"] = redact_query(query).encode("latin-1")
        response: Any = problem_response(
            Request(scope),
            400,
            f"API tokens are not accepted in the URL (query parameter {', '.join(map(repr, found))}): "
            "URLs are kept in logs and browser history. Send the token as `Authorization: Bearer <token>`. "
            "If this URL went through a proxy or a browser, treat the token as seen: revoke it "
            "(python -m portal token revoke ID) and create a new one.",
        )
        await response(scope, _no_receive, send)


def _is_credential(name: str, value: str) -> bool:
    return name.strip().lower() in CREDENTIAL_PARAMETERS or TOKEN_LIKE.search(value) is not None


def redact_query(query: str) -> str:
    """`query` with the value of every credential parameter (and anything token-like) replaced."""
    parts = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if _is_credential(unquote_plus(name), unquote_plus(value)):
            part = f"{name}={REDACTED}" if equals else REDACTED
        parts.append(part)
    return "&".join(parts)


def redact(text: str) -> str:
    """A log line's text with credentials in its query string and token-like strings replaced."""
    path, question, query = text.partition("?")
    if question:
        text = f"{path}?{redact_query(query)}"
    return TOKEN_LIKE.sub(TOKEN_PREFIX + REDACTED, text)


class RedactCredentials(logging.Filter):
    """Scrubs credentials from the server's access log (its arguments hold the path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Install RedactCredentials on uvicorn's access logger, once (logging config keeps filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())


def document_refusals(schema: dict[str, Any]) -> None:
    """Document the refusals of these middlewares in the OpenAPI document: 400 (a token in the URL)
    on every operation, 415 (not JSON) on every state-changing one."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", {"description": TITLES[400], "content": problem})
            if method.upper() in STATE_CHANGING:
                responses.setdefault("415", {"description": TITLES[415], "content": problem})


def _shown(value: str, most: int = 80) -> str:
    printable = "".join(c if c.isprintable() else "?" for c in value)
    return printable if len(printable) <= most else printable[: most - 3] + "..."
