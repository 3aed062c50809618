"""`/health` and `/api/v1/version`, for load balancers and support.

Like every path they need a caller (gate.SignedInOnly): the local user on the embedded default,
a viewer token for a load balancer's probe on a shared portal. Every caller is told whether each
part is up; only a token holder (any role) is told what it found or why it failed: those texts
name files, hosts and users (`DuckDB file /srv/...`, `Trino https://... as portal`), which a
signed-in person in the browser has no use for.
"""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from portal.api.deps import Service, TokenHolder
from portal.api.errors import documented
from portal.api.schemas import HealthCheck, SystemHealth, VersionOut
from portal.project.artifacts import ArtifactError
from portal.settings import ROOT
from portal.warehouse import WarehouseError

router = APIRouter(tags=["system"])


def _portal_version() -> str:
    try:
        return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _check(name: str, probe: object) -> HealthCheck:
    try:
        detail = probe() if callable(probe) else str(probe)
    except (ArtifactError, WarehouseError, sa.exc.SQLAlchemyError) as exc:
        return HealthCheck(name=name, ok=False, detail=str(exc))
    return HealthCheck(name=name, ok=True, detail=str(detail))


@router.get(
    "/health",
    response_model=SystemHealth,
    responses={503: {"model": SystemHealth, "description": "Degraded"}, **documented(401)},
    # The token is optional here (OpenAPI's empty requirement, added to the bearer one).
    openapi_extra={"security": [{}]},
)
def health(service: Service, holder: TokenHolder) -> JSONResponse:
    """200 when the catalog database, the dbt artifacts and the warehouse answer; 503 otherwise.

    Each check's `detail` is given to token holders only; a bad token is a 401, as everywhere."""

    def catalog_db() -> str:
        with service.sessions() as session:
            session.execute(sa.text("select 1"))
        return "reachable"

    def artifacts() -> str:
        return f"{len(service.artifacts().manifest.nodes)} nodes in the manifest"

    def warehouse() -> str:
        found = service.warehouse()
        found.query("select 1")
        return found.status()

    checks = [
        _check("catalog_db", catalog_db),
        _check("artifacts", artifacts),
        _check("warehouse", warehouse),
    ]
    ok = all(c.ok for c in checks)
    if holder is None:
        checks = [HealthCheck(name=c.name, ok=c.ok) for c in checks]
    body = SystemHealth(status="ok" if ok else "degraded", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get("/api/v1/version", response_model=VersionOut)
def version(service: Service) -> VersionOut:
    try:
        dbt_core: str | None = metadata.version("dbt-core")
    except metadata.PackageNotFoundError:
        dbt_core = None
    return VersionOut(
        portal=_portal_version(),
        api="v1",
        python=platform.python_version(),
        dbt_core=dbt_core,
        warehouse=service.settings.warehouse,
    )
