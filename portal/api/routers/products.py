"""`/api/v1/data-products/`: the catalog, one product, create/edit/deprecate, refresh, data,
lineage, quality and schema. Each route authorizes, calls the service, and formats."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal, cast, get_args

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from catalog_db.models import DataProduct
from portal import audit, jobs, runs
from portal.api.deps import Background, Caller, Service
from portal.api.errors import ApiProblem, documented, refusal
from portal.api.schemas import (
    ChangeOut,
    ColumnOut,
    DriftOut,
    FieldError,
    FreshnessOut,
    HealthOut,
    LineageEdge,
    LineageNode,
    LineageOut,
    NodeOutcomeOut,
    ProductCreate,
    ProductDetailOut,
    ProductListItem,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProfileOut,
    QualityOut,
    QueryResult,
    RunRef,
    RunSummaryOut,
    SchemaOut,
    SubmissionState,
    Submitted,
    TestOut,
)
from portal.auth.access import authorize
from portal.catalog import browse
from portal.catalog.browse import SORTS, CatalogQuery
from portal.catalog.detail import ProductDetail, product_detail
from portal.catalog.preview import EXPORT_FORMATS
from portal.catalog.preview import export as catalog_export
from portal.catalog.preview import preview as catalog_preview
from portal.creation import defaults as spec_defaults
from portal.creation import flow as creation
from portal.creation import lifecycle
from portal.creation.spec import ProductSpec
from portal.errors import InvalidInput
from portal.lineage.graph import neighbourhood
from portal.observability.drift import drift_events
from portal.observability.freshness import freshness
from portal.observability.history import latest_profile
from portal.observability.profile import primary_key
from portal.project.statuses import HEALTH_LEVELS, LISTED_LIFECYCLES
from portal.service import NotFound, PortalService
from portal.settings import Settings
from portal.warehouse import BadRequest, Filter
from portal.warehouse.base import MAX_COLUMNS, MAX_FILTERS, MAX_VALUE_CHARS

router = APIRouter(prefix="/api/v1/data-products", tags=["data products"])

# How long a create, edit or refresh call waits for its run to start before answering 202 anyway.
START_WAIT_S = 30.0
FILTER_OPS = {
    "eq": "=",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "contains": "contains",
    "isnull": "is null",
    "notnull": "is not null",
}
FILTER_HELP = (
    "`column:op:value`, repeatable (all must hold). op is one of "
    + ", ".join(FILTER_OPS)
    + f"; isnull and notnull take no value. At most {MAX_FILTERS} filters, values of at most "
    + f"{MAX_VALUE_CHARS:,} characters. Example: `status:eq:shipped`, `net_revenue:gt:100`."
)
PRODUCT_TYPES = {"model", "seed", "snapshot"}  # what the catalog lists
# The core's vocabularies as literals, so OpenAPI lists the choices and a wrong one is a 422
# naming them; the asserts keep them in step with project/statuses.py and catalog/browse.py.
Sort = Literal["name", "health", "last refreshed", "row count", "owner", "type"]
Lifecycle = Literal[
    "draft", "building", "in_review", "published", "failed", "rejected", "deprecated", "built-in"
]
HealthLevel = Literal["failing", "stale", "warning", "unknown", "healthy"]
assert get_args(Sort) == SORTS and get_args(Lifecycle) == LISTED_LIFECYCLES
assert get_args(HealthLevel) == HEALTH_LEVELS
READ = documented(401, 403, 404, 422)


def _product_row(service: PortalService, key: str) -> DataProduct:
    row = runs.registration(service, key)
    if row is None:
        service.resolve(key)  # NotFound with suggestions when it is nothing at all
        raise ApiProblem(
            404,
            f"{key} is a model of the dbt project but not a registered data product; only those can be changed.",
        )
    return row


def _detail(service: PortalService, key: str) -> ProductDetail:
    """The product's details; a source, test or exposure is no product (404, not a crash)."""
    node = service.resolve(key)
    if node.resource_type not in PRODUCT_TYPES:
        raise NotFound(f"{key} is a {node.resource_type}, not a data product or model.")
    return product_detail(service, node.unique_id)


def _product_out(service: PortalService, key: str) -> ProductOut:
    """The catalog entry, or the registration alone while the product is being created."""
    try:
        return ProductOut.from_entry(_detail(service, key).health)
    except NotFound:
        row = runs.registration(service, key)
        if row is None:
            raise
        return ProductOut.from_registration(row)


def _run_ref(service: PortalService, run_id: int | None) -> RunRef | None:
    if run_id is None:
        return None
    return RunRef(id=run_id, status=runs.run_detail(service, run_id).status, url=f"/api/v1/runs/{run_id}")


def _answer(
    service: PortalService, submission: jobs.Submission, response: Response, done_status: int
) -> Submitted:
    """A create/edit/refresh as the client sees it: refused (raised), done (201/200), or accepted (202)."""
    if submission.error is not None:
        raise submission.error
    result = submission.result
    if isinstance(result, creation.CreationResult) and result.status == "refused":
        raise refusal(result.problems, result.name)
    product = _product_out(service, submission.name)
    if submission.done:
        response.status_code = done_status
        return Submitted(
            product=product,
            run=_run_ref(service, submission.run_id),
            state=cast(SubmissionState, result.status),
            proposal=getattr(result, "proposal_id", None),
            outcomes=[NodeOutcomeOut.model_validate(o) for o in getattr(result, "outcomes", [])],
            message=getattr(result, "message", ""),
        )
    response.status_code = 202
    if submission.queued:
        if submission.run_id is None:  # a refresh: its run starts with its build
            message = (
                "Queued behind another build on this project; its run appears in GET .../runs once it starts."
            )
        else:
            message = (
                "Queued behind another build on this project; follow the run: it starts when that build ends."
            )
        return Submitted(
            product=product, run=_run_ref(service, submission.run_id), state="queued", message=message
        )
    return Submitted(
        product=product,
        run=_run_ref(service, submission.run_id),
        state="accepted",
        message="Building; follow the run.",
    )


# --- the catalog ---------------------------------------------------------------------------


@router.get("/", response_model=ProductPage, responses=documented(401, 403, 422))
def list_products(
    service: Service,
    caller: Caller,
    search: Annotated[
        str,
        Query(
            description="Words that must all appear (name, description, columns and their descriptions, "
            "tags, labels, owner, type); each item's `matched` says where."
        ),
    ] = "",
    product_type: Annotated[list[str], Query(alias="type", description="Data product types (any of).")] = [],  # noqa: B006
    owner: Annotated[list[str], Query(description="Owners (any of).")] = [],  # noqa: B006
    lifecycle: Annotated[
        list[Lifecycle], Query(description="Where products are in their life (any of).")
    ] = [],  # noqa: B006
    health: Annotated[
        list[HealthLevel], Query(description="How far products can be trusted now (any of).")
    ] = [],  # noqa: B006
    status: Annotated[
        list[Lifecycle | HealthLevel],
        Query(
            description="Deprecated: lifecycles or health levels; use `lifecycle` and `health`.",
            deprecated=True,
        ),
    ] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="dbt tags (all of), as `tag:` selects them.")] = [],  # noqa: B006
    label: Annotated[list[str], Query(description="Labels, meta.tags (all of).")] = [],  # noqa: B006
    sort: Sort = "name",
    descending: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ProductPage:
    authorize(caller, "read")
    query = CatalogQuery(
        text=search,
        types=tuple(product_type),
        owners=tuple(owner),
        lifecycles=(*lifecycle, *(s for s in status if s not in HEALTH_LEVELS)),
        health=(*health, *(s for s in status if s in HEALTH_LEVELS)),
        tags=tuple(tag),
        labels=tuple(label),
        sort=sort,
        descending=descending,
    )
    found = browse.search(service, query)
    searched = bool(search.split())
    items = [ProductListItem.from_found(f, searched) for f in found[offset : offset + limit]]
    return ProductPage(items=items, total=len(found), limit=limit, offset=offset)


@router.get("/{id}", response_model=ProductDetailOut, responses=READ)
def get_product(id: str, service: Service, caller: Caller) -> ProductDetailOut:
    authorize(caller, "read")
    row = runs.registration(service, id)
    try:
        return ProductDetailOut.from_detail(_detail(service, id), row)
    except NotFound:
        if row is not None:
            return ProductDetailOut.from_registration_only(row)
        reason = lifecycle.why_missing(service, id)
        if reason is None:
            raise
        raise NotFound(reason) from None


# --- writes --------------------------------------------------------------------------------


@router.post(
    "/",
    status_code=202,
    response_model=Submitted,
    responses={
        201: {"model": Submitted, "description": "Created (with ?wait=true)"},
        **documented(401, 403, 409, 413, 422, 503),
    },
)
def create_product(
    body: ProductCreate,
    service: Service,
    background: Background,
    caller: Caller,
    response: Response,
    wait: Annotated[
        bool, Query(description="Answer when the build is done (201) instead of when it starts (202).")
    ] = False,
) -> Submitted:
    """Validate, generate, build, test and publish a product, as the creation page does."""
    authorize(caller, "create")
    try:
        spec = body.to_spec()
    except InvalidInput as exc:
        raise ApiProblem(422, str(exc), [FieldError(field="name", message=str(exc))]) from None
    completed = spec_defaults.complete(service, spec, caller)
    submission = background.create(completed, caller).wait(None if wait else START_WAIT_S)
    answer = _answer(service, submission, response, done_status=201)
    if not spec.primary_key and completed.primary_key:
        answer.primary_key = list(completed.primary_key)
    return answer


@router.patch(
    "/{id}",
    status_code=202,
    response_model=Submitted,
    responses={
        200: {"model": Submitted, "description": "Edited (with ?wait=true)"},
        **documented(401, 403, 404, 409, 413, 422, 503),
    },
)
def edit_product(
    id: str,
    body: ProductPatch,
    service: Service,
    background: Background,
    caller: Caller,
    response: Response,
    wait: Annotated[
        bool, Query(description="Answer when the build is done (200) instead of when it starts (202).")
    ] = False,
) -> Submitted:
    """Change a portal product's metadata or SQL; it is rebuilt and republished like a creation."""
    row = _product_row(service, id)
    authorize(caller, "edit", row)
    if row.origin != "portal":
        raise ApiProblem(
            409, f"{row.name} is written by hand in the dbt project; change it there, not through the API."
        )
    try:
        current = lifecycle.spec_of(service, row.name)
    except FileNotFoundError as exc:
        raise ApiProblem(
            409,
            f"{row.name}'s model files are missing ({exc.filename}); restore them, or discard it in the portal.",
        ) from None
    spec: ProductSpec = replace(current, **body.changes())
    submission = background.edit(row.name, spec, caller).wait(None if wait else START_WAIT_S)
    return _answer(service, submission, response, done_status=200)


@router.delete("/{id}", response_model=ProductOut, responses=documented(401, 403, 404, 409))
def deprecate_product(
    id: str,
    service: Service,
    caller: Caller,
    discard: Annotated[
        bool,
        Query(
            description="Discard instead: remove a product that was never published (draft, failed, or "
            "left building by a portal that died), with its files and audit table. A published "
            "product is only ever deprecated."
        ),
    ] = False,
) -> ProductOut:
    """Deprecate (never destroy): consumers keep reading it while they move off it."""
    row = _product_row(service, id)
    if discard:
        authorize(caller, "discard", row)
        lifecycle.discard(service, row.name, caller)
        with service.sessions() as session:
            return ProductOut.from_registration(session.get_one(DataProduct, row.id))
    authorize(caller, "deprecate", row)
    lifecycle.deprecate(service, row.name, caller)
    return _product_out(service, row.name)


@router.post("/{id}/run", status_code=202, response_model=Submitted, responses=documented(401, 403, 404, 409))
def run_product(
    id: str, service: Service, background: Background, caller: Caller, response: Response
) -> Submitted:
    """Refresh: `dbt build --select +<product>` in the background, then profile it."""
    row = runs.registration(service, id)
    if row is not None and row.status == "building":
        running = runs.product_runs(service, row.name, limit=1)
        follow = f" (run {running[0].id}, GET /api/v1/runs/{running[0].id})" if running else ""
        raise ApiProblem(
            409, f"{row.name} is being built right now{follow}; refresh it once that build has finished."
        )
    node = service.resolve(id)
    authorize(caller, "run", row)
    submission = background.refresh(node.name, caller).wait(START_WAIT_S)
    audit.record_event(
        service,
        caller,
        "product.refresh_requested",
        "data_product",
        node.name,
        {"run_id": submission.run_id},
    )
    # 202 even when it already finished: a refresh creates no resource.
    return _answer(service, submission, response, done_status=202)


# --- reading -------------------------------------------------------------------------------


@router.get("/{id}/runs", response_model=list[RunSummaryOut], responses=READ)
def product_runs(
    id: str, service: Service, caller: Caller, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RunSummaryOut]:
    authorize(caller, "read")
    return [RunSummaryOut.model_validate(r) for r in runs.product_runs(service, id, limit=limit)]


@router.get("/{id}/history", response_model=list[ChangeOut], responses=READ)
def product_history(
    id: str, service: Service, caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[ChangeOut]:
    """The product's audit trail, newest first: every create, edit, deprecate, discard and refresh,
    with who asked and their teams. A discarded product keeps its history here."""
    authorize(caller, "read")
    return [ChangeOut.model_validate(c) for c in runs.product_changes(service, id, limit=limit)]


# The parameters every read of a product's rows shares (query and export), said once.
ColumnsParam = Annotated[
    list[str],
    Query(
        description=f"Columns to return, comma-separated or repeated (default all; at most {MAX_COLUMNS})."
    ),
]
FilterParam = Annotated[list[str], Query(description=FILTER_HELP)]
SortParam = Annotated[
    str | None,
    Query(
        description="A column to sort every matching row by before any are returned (ascending by default)."
    ),
]
DescendingParam = Annotated[bool, Query(description="Sort by `sort` from the highest value down.")]
ExportFormat = Literal["csv", "parquet"]
assert set(get_args(ExportFormat)) == set(EXPORT_FORMATS)


def _chosen(columns: list[str]) -> list[str] | None:
    """`columns` as asked for, comma-separated or repeated; None for every column."""
    return [c.strip() for text in columns for c in text.split(",") if c.strip()] or None


def _filters(texts: list[str]) -> list[Filter]:
    found = []
    for text in texts:
        column, _, rest = text.partition(":")
        op, _, value = rest.partition(":")
        if not column or op not in FILTER_OPS:
            shown = text if len(text) <= 60 else text[:59] + "…"  # a name may be any length
            raise ApiProblem(
                400,
                f"Filter {shown!r} is not `column:op:value`. {FILTER_HELP}",
                [FieldError(field="filter", message=FILTER_HELP)],
            )
        found.append(Filter(column, FILTER_OPS[op], value or None))
    return found


def _media_type(accept: str | None) -> str:
    """application/json or text/csv, by the Accept header's preferences (ties go to JSON)."""
    if not accept:
        return "application/json"
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        weights[media.lower()] = q

    def weight(media: str) -> float:
        return weights.get(media, weights.get(media.split("/")[0] + "/*", weights.get("*/*", 0.0)))

    json_q, csv_q = weight("application/json"), weight("text/csv")
    if max(json_q, csv_q) <= 0:
        raise ApiProblem(
            406, f"This endpoint answers application/json or text/csv, not {accept!r}; ask for one of them."
        )
    return "text/csv" if csv_q > json_q else "application/json"


@router.get(
    "/{id}/query",
    response_model=QueryResult,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "Rows as JSON or CSV (by Accept)",
        },
        **documented(400, 401, 403, 404, 406, 409, 422, 502, 503, 504),
    },
)
def query_product(
    id: str,
    request: Request,
    service: Service,
    caller: Caller,
    limit: Annotated[
        int | None,
        Query(
            description="Rows to return; at most the server's maximum (PORTAL_PREVIEW_MAX_ROWS), refused above it."
        ),
    ] = None,
    columns: ColumnsParam = [],  # noqa: B006
    filter: FilterParam = [],  # noqa: B006
    sort: SortParam = None,
    descending: DescendingParam = False,
) -> Response:
    """Read a product's data, read-only and bounded; JSON or CSV by `Accept`."""
    authorize(caller, "query")
    media_type = _media_type(request.headers.get("accept"))
    if limit is not None and limit < 1:  # the service reads 0 as "the default", the API refuses it
        raise BadRequest(f"limit must be at least 1 (got {limit}).")
    # The service records the read as a usage event (who, product, rows, duration) of the API face.
    preview = catalog_preview(
        service,
        id,
        identity=caller,
        columns=_chosen(columns),
        filters=_filters(filter),
        limit=limit,
        order_by=sort or None,
        descending=descending,
        face="api",
    )
    name = service.resolve(id).name
    headers = {"X-Total-Rows": str(preview.total_rows), "X-Truncated": str(preview.truncated).lower()}
    if media_type == "text/csv":
        return Response(preview.rows.to_csv(index=False), media_type="text/csv", headers=headers)
    rows = preview.rows.to_json(orient="records", date_format="iso")
    body = QueryResult.model_construct(
        product=name, columns=preview.columns, rows=[], returned_rows=len(preview.rows), total_rows=preview.total_rows,
        limit=preview.limit, truncated=preview.truncated, elapsed_ms=round(preview.elapsed_s * 1000, 3),
    ).model_dump_json()  # fmt: skip
    # The rows are serialised by pandas (dates, decimals, NaN), then spliced in: no second pass.
    return Response(
        body.replace('"rows":[]', f'"rows":{rows}', 1), media_type="application/json", headers=headers
    )


@router.get(
    "/{id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "Every matching row, up to the server's maximum, as a CSV or Parquet file "
            "streamed as it is read; X-Truncated says whether it was cut at the maximum.",
        },
        **documented(400, 401, 403, 404, 409, 422, 502, 503, 504),
    },
)
def export_product(
    id: str,
    service: Service,
    caller: Caller,
    format: Annotated[ExportFormat, Query(description="The file's format.")] = "csv",
    columns: ColumnsParam = [],  # noqa: B006
    filter: FilterParam = [],  # noqa: B006
    sort: SortParam = None,
    descending: DescendingParam = False,
) -> StreamingResponse:
    """Download a product's whole filtered, sorted result as CSV or Parquet, streamed from the
    warehouse batch by batch and cut at the server's maximum rows (PORTAL_PREVIEW_MAX_ROWS).
    The headers say how many rows matched, how many the file holds, and whether it was cut."""
    authorize(caller, "query")
    # Recorded as a read of the API face when it starts (who, product, rows it holds).
    result = catalog_export(
        service,
        id,
        identity=caller,
        format=format,
        columns=_chosen(columns),
        filters=_filters(filter),
        order_by=sort or None,
        descending=descending,
        face="api",
    )
    name = service.resolve(id).name
    headers = {
        "Content-Disposition": f'attachment; filename="{name}{result.extension}"',
        "X-Total-Rows": str(result.total_rows),
        "X-Exported-Rows": str(result.rows),
        "X-Row-Limit": str(result.limit),
        "X-Truncated": str(result.cut).lower(),
    }
    return StreamingResponse(result.chunks, media_type=result.media_type, headers=headers)


@router.get("/{id}/lineage", response_model=LineageOut, responses=READ)
def product_lineage(
    id: str,
    service: Service,
    caller: Caller,
    upstream: Annotated[
        int | None, Query(ge=0, le=1000, description="Steps upstream (omit for all).")
    ] = None,
    downstream: Annotated[
        int | None, Query(ge=0, le=1000, description="Steps downstream (omit for all).")
    ] = None,
) -> LineageOut:
    """The product's lineage: nodes and edges within the given steps."""
    authorize(caller, "read")
    node = service.resolve(id)
    graph = service.lineage().graph
    kept = neighbourhood(graph, node.unique_id, upstream, downstream)
    nodes = [
        LineageNode(
            unique_id=uid, name=d["name"], label=d["label"], resource_type=d["resource_type"], layer=d.get("layer"),
            is_data_product=bool(d.get("is_data_product")), owner=d.get("owner"), status=d.get("status"),
            failing_tests=int(d.get("failing_tests") or 0),
        )
        for uid, d in sorted(graph.subgraph(kept).nodes(data=True))
    ]  # fmt: skip
    edges = [LineageEdge(source=a, target=b) for a, b in sorted(graph.subgraph(kept).edges())]
    return LineageOut(
        focus=node.unique_id, upstream=upstream, downstream=downstream, nodes=nodes, edges=edges
    )


@router.get("/{id}/quality", response_model=QualityOut, responses=READ)
def product_quality(id: str, service: Service, caller: Caller) -> QualityOut:
    """Latest test results, freshness, the latest profile and open drift."""
    authorize(caller, "read")
    detail = _detail(service, id)
    profile = latest_profile(service, id)
    drift = drift_events(service, id, open_only=True, limit=50)
    return QualityOut(
        name=detail.entry.name,
        health=HealthOut.from_health(detail.health),
        tests=[TestOut.model_validate(t) for t in detail.tests],
        freshness=FreshnessOut.model_validate(freshness(service, id)),
        profile=ProfileOut.model_validate(profile) if profile is not None else None,
        open_drift=[DriftOut.model_validate(d) for d in drift],
    )


@router.get("/{id}/schema", response_model=SchemaOut, responses=READ)
def product_schema(id: str, service: Service, caller: Caller) -> SchemaOut:
    """Columns with types, descriptions and tests; the primary key and whether the contract is enforced."""
    authorize(caller, "read")
    detail = _detail(service, id)
    node = detail.node
    return SchemaOut(
        name=node.name,
        relation_name=node.relation_name,
        materialization=node.materialized,
        contract_enforced=node.contract_enforced,
        primary_key=list(primary_key(service.artifacts().manifest, node)),
        columns=[ColumnOut.model_validate(c) for c in detail.columns],
    )


def document_limits(schema: dict[str, Any], settings: Settings) -> None:
    """Write the query's row limits into the OpenAPI document: they come from settings, known only
    when the app is created. Values above the maximum are still answered (400, naming it)."""
    for parameter in schema["paths"][f"{router.prefix}/{{id}}/query"]["get"]["parameters"]:
        if parameter["name"] == "limit":
            parameter["schema"] = {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.preview_max_rows,
                "default": settings.preview_default_rows,
            }
