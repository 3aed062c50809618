"""A product's data contract in the Open Data Contract Standard (ODCS) v3, and back.

The `open-data-contract-standard` package is the model (pydantic) and the standard's JSON
schema: every contract written here is checked against that schema before it is served, and
every uploaded one before it is read. The mapping from the portal's facts to ODCS fields is ours:

- name, description, status (the lifecycle), tags (the portal's labels), domain (the dbt group);
- team: the owning team, with the dbt group's owner as its member;
- schema: one object, the product's table, its properties typed as the warehouse names them
  (physicalType) and as ODCS does (logicalType), primaryKey and primaryKeyPosition from the key,
  quality rules from the dbt tests (`quality.py`);
- slaProperties: the update frequency and a freshness promise on the freshness column;
- servers: the DuckDB file and schema, or the Trino host, catalog and schema;
- customProperties: what ODCS has no field for (type, owner, consumers, update frequency,
  materialization, dbt unique id).

Reading a contract never raises a stack trace at anyone: each problem is an InvalidInput
`Problem` whose field is the path in the contract (`contract.schema[0].properties[2].name`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, NoReturn

import jsonschema
import pydantic
import yaml
from open_data_contract_standard.model import (
    CustomProperty,
    Description,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
    Server,
    ServiceLevelAgreementProperty,
    Team,
    TeamMember,
)

from portal.catalog.detail import ProductDetail
from portal.contracts.facts import ContractColumn, ContractFacts, ContractServer, facts_of
from portal.contracts.quality import from_quality, rules_sorted, to_quality
from portal.creation.spec import MATERIALIZATIONS, UPDATE_FREQUENCIES, Problem, ProductSpec
from portal.errors import InvalidInput
from portal.observability.freshness import FREQUENCY_PERIODS
from portal.service import PortalService

API_VERSION = "v3.2.0"
MEDIA_TYPE = "application/yaml"
MAX_CONTRACT_BYTES = 1_000_000  # an upload larger than any product's contract is refused unread
LIFECYCLE_STATUS = {"published": "active", "built-in": "active", "building": "proposed", "failed": "draft"}
STATUS_LIFECYCLE = {"active": "published", "proposed": "building"}


# --- writing -------------------------------------------------------------------------------


def build_contract(facts: ContractFacts) -> OpenDataContractStandard:
    """The ODCS contract stating `facts`; checked against the standard's schema."""
    key_position = {column: index for index, column in enumerate(facts.primary_key, start=1)}
    properties = [_property(column, key_position.get(column.name)) for column in facts.columns]
    table = SchemaObject(
        name=facts.name,
        physicalName=facts.physical_name or facts.name,
        physicalType="view" if facts.materialization == "view" else "table",
        logicalType="object",
        properties=properties,
        quality=[to_quality(rule) for rule in facts.rules] or None,
    )
    custom = _custom(
        dataProductType=facts.data_product_type,
        owner=facts.owner,
        consumers=list(facts.consumers) or None,
        updateFrequency=facts.update_frequency,
        materialization=facts.materialization,
        lifecycle=facts.lifecycle,
        dbtUniqueId=facts.unique_id,
        dbtGroupOwner=facts.group_owner,
    )
    contract = OpenDataContractStandard(
        apiVersion=API_VERSION,
        kind="DataContract",
        id=f"urn:asgard:data-product:{facts.name}",
        name=facts.name,
        version=_semver(facts.version),
        status=LIFECYCLE_STATUS.get(facts.lifecycle, facts.lifecycle),
        domain=facts.group,
        tags=list(facts.labels) or None,
        description=Description(purpose=facts.description) if facts.description else None,
        team=_team(facts),
        schema=[table],
        slaProperties=_sla(facts) or None,
        servers=[_server(facts.server)] if facts.server else None,
        customProperties=custom or None,
    )
    _check_schema(_document(contract))  # our own output is held to the standard too
    return contract


def contract_yaml(facts: ContractFacts) -> str:
    return build_contract(facts).to_yaml()


def file_name(name: str) -> str:
    """The download's name: `dp_customer_360.odcs.yaml` (datacontract-cli's convention)."""
    return f"{name}.odcs.yaml"


def _property(column: ContractColumn, key_position: int | None) -> SchemaProperty:
    return SchemaProperty(
        name=column.name,
        physicalName=column.name,
        physicalType=column.type,
        logicalType=logical_type(column.type),
        description=column.description or None,
        primaryKey=True if key_position else None,
        primaryKeyPosition=key_position,
        quality=[to_quality(rule) for rule in column.rules] or None,
        customProperties=_custom(descriptionFrom=column.description_from) or None,
    )


_LOGICAL = (
    (
        re.compile(r"^(tiny|small|big|huge|u)?int(eger)?\d*\b|^(u?bigint|smallint|tinyint|hugeint|long)"),
        "integer",
    ),
    (re.compile(r"^(decimal|numeric|double|float|real)"), "number"),
    (re.compile(r"^bool"), "boolean"),
    (re.compile(r"^date$"), "date"),
    (re.compile(r"^(timestamp|datetime)"), "timestamp"),
    (re.compile(r"^time\b"), "time"),
    (re.compile(r"(\[\]$|^array)"), "array"),
    (re.compile(r"^(struct|map|row|json)"), "object"),
)


def logical_type(physical: str | None) -> str | None:
    """ODCS's logical type of a warehouse type name (DuckDB's or Trino's); string otherwise."""
    if not physical:
        return None
    folded = physical.strip().lower()
    return next((logical for pattern, logical in _LOGICAL if pattern.search(folded)), "string")


def _team(facts: ContractFacts) -> Team | None:
    if not facts.owner:
        return None
    members = [TeamMember(username=facts.group_owner, role="owner")] if facts.group_owner else None
    return Team(
        name=facts.owner, description=f"dbt group {facts.group}" if facts.group else None, members=members
    )


def _sla(facts: ContractFacts) -> list[ServiceLevelAgreementProperty]:
    period = FREQUENCY_PERIODS.get(facts.update_frequency or "")
    if period is None:
        return []
    value, unit = (int(period.total_seconds() // 3600), "h") if period.days == 0 else (period.days, "d")
    element = f"{facts.name}.{facts.freshness_column}" if facts.freshness_column else None
    found = [
        ServiceLevelAgreementProperty(
            property="frequency",
            value=value,
            unit=unit,
            element=element,
            description=f"Rebuilt {facts.update_frequency}.",
        )
    ]
    if element:  # datacontract test checks it: the newest row is no older than one period
        found.append(
            ServiceLevelAgreementProperty(
                property="freshness",
                value=value,
                unit=unit,
                element=element,
                description=f"The newest {facts.freshness_column} is at most one period old.",
            )
        )
    return found


def _server(server: ContractServer) -> Server:
    if server.type == "trino":
        return Server(
            server="trino",
            type="trino",
            host=server.host,
            port=server.port,
            catalog=server.catalog,
            schema=server.schema,
        )
    return Server(server="duckdb", type="duckdb", database=server.database, schema=server.schema)


def _custom(**values: Any) -> list[CustomProperty]:
    return [CustomProperty(property=k, value=v) for k, v in values.items() if v is not None]


def _semver(version: str | None) -> str:
    """ODCS versions the contract; a dbt model version `2` is the contract's 2.0.0."""
    if version and re.fullmatch(r"\d+", version):
        return f"{version}.0.0"
    return version or "1.0.0"


def _document(contract: OpenDataContractStandard) -> dict[str, Any]:
    return contract.model_dump(exclude_defaults=True, exclude_none=True, by_alias=True, mode="json")


# --- reading -------------------------------------------------------------------------------


def read_contract(text: str | bytes) -> OpenDataContractStandard:
    """An uploaded contract, checked: YAML, then the ODCS schema, then the model. InvalidInput
    names every problem and where it is (`contract.schema[0].properties[1].name`)."""
    size = len(text if isinstance(text, bytes) else text.encode("utf-8", "replace"))
    if size > MAX_CONTRACT_BYTES:
        _refuse(Problem("contract", f"The contract is {size:,} bytes; the limit is {MAX_CONTRACT_BYTES:,}."))
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            _refuse(
                Problem(
                    "contract", f"The contract is not UTF-8 text (byte {exc.start}). Save it as UTF-8 YAML."
                )
            )
    try:
        document = yaml.load(text, Loader=_NoAliases)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (mark.line + 1, mark.column + 1) if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        _refuse(
            Problem("contract", f"not valid YAML: {reason}.", where), headline="The contract cannot be read"
        )
    if not isinstance(document, dict):
        shown = "empty" if document is None else f"a {type(document).__name__}"
        _refuse(
            Problem(
                "contract", f"The contract is {shown}, not a mapping of ODCS fields (apiVersion, kind, …)."
            )
        )
    _check_schema(document)
    try:
        return OpenDataContractStandard.model_validate(document)
    except pydantic.ValidationError as exc:  # the schema passed; the model is stricter in places
        _refuse(*(Problem(_path(e["loc"]), f"{e['msg']}.") for e in exc.errors()))


class _NoAliases(yaml.SafeLoader):
    """Safe YAML without aliases: a few nested `*name`s make a tree of billions of nodes that
    checking against the schema would walk (a "billion laughs"); a contract needs none."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "it uses an alias (*name): write the value out in full", mark
            )
        return super().compose_node(parent, index)


def facts_from_contract(contract: OpenDataContractStandard) -> ContractFacts:
    """The facts a contract states (its first schema object is the product's table)."""
    custom = _custom_values(contract.customProperties)
    if not contract.schema_:
        _refuse(
            Problem("contract.schema", "The contract has no schema: add one object, the product's table.")
        )
    table = contract.schema_[0]
    properties = table.properties or []
    columns = tuple(
        ContractColumn(
            name=p.name or "",
            type=p.physicalType,
            description=p.description or "",
            rules=rules_sorted([r for q in p.quality or [] if (r := from_quality(q, p.name)) is not None]),
            description_from=_custom_values(p.customProperties).get("descriptionFrom"),
        )
        for p in properties
    )
    keyed = [p for p in properties if p.primaryKey]
    keyed.sort(key=lambda p: (p.primaryKeyPosition is None, p.primaryKeyPosition or 0))
    team = contract.team
    owner = custom.get("owner") or (team.name if isinstance(team, Team) else None)
    members = (team.members if isinstance(team, Team) else team) or []
    owners = [m for m in members if (m.role or "").lower() == "owner"]
    server = contract.servers[0] if contract.servers else None
    sla = {s.property: s for s in contract.slaProperties or [] if s.property}
    element = sla.get("freshness") or sla.get("frequency")
    freshness_column = element.element.split(".")[-1] if element and element.element else None
    return ContractFacts(
        name=contract.name or "",
        description=(contract.description.purpose if contract.description else None)
        or table.description
        or "",
        data_product_type=custom.get("dataProductType"),
        owner=owner or (owners[0].username if owners else None),
        consumers=tuple(_strings(custom.get("consumers"))),
        update_frequency=custom.get("updateFrequency") or _frequency_of(sla.get("frequency")),
        labels=tuple(contract.tags or ()),
        primary_key=tuple(p.name or "" for p in keyed),
        materialization=custom.get("materialization")
        or ("view" if (table.physicalType or "").lower() == "view" else None),
        lifecycle=custom.get("lifecycle")
        or STATUS_LIFECYCLE.get(contract.status or "", contract.status or "draft"),
        columns=columns,
        rules=rules_sorted([r for q in table.quality or [] if (r := from_quality(q, None)) is not None]),
        group=contract.domain,
        group_owner=custom.get("dbtGroupOwner"),
        version=_dbt_version(contract.version),
        physical_name=table.physicalName,
        server=_server_facts(server) if server else None,
        freshness_column=freshness_column,
        unique_id=custom.get("dbtUniqueId"),
    )


def spec_from_contract(text: str | bytes, *, sql: str = "") -> ProductSpec:
    """The Create form's fields from an uploaded contract: name, description, type, owner,
    consumers, frequency, labels, key, materialization and column descriptions. The SQL is not
    in a contract (it says what the data is, not how it is computed): the analyst writes it."""
    facts = facts_from_contract(read_contract(text))
    problems = []
    if facts.update_frequency and facts.update_frequency not in UPDATE_FREQUENCIES:
        problems.append(
            Problem(
                "contract.customProperties.updateFrequency",
                f"`{facts.update_frequency}` is not one of {', '.join(UPDATE_FREQUENCIES)}.",
            )
        )
    unnamed = [i for i, c in enumerate(facts.columns) if not c.name]
    problems += [
        Problem(f"contract.schema[0].properties[{i}].name", "The property has no name.") for i in unnamed
    ]
    if problems:
        _refuse(*problems)
    return ProductSpec(
        name=facts.name,
        description=facts.description,
        data_product_type=facts.data_product_type or "CUSTOM",
        owner=facts.owner or "",
        consumers=facts.consumers,
        update_frequency=facts.update_frequency or "daily",
        tags=facts.labels,
        primary_key=facts.primary_key,
        materialization=facts.materialization if facts.materialization in MATERIALIZATIONS else "table",
        sql=sql,
        column_descriptions={c.name: c.description for c in facts.columns if c.description},
    )


def _frequency_of(sla: ServiceLevelAgreementProperty | None) -> str | None:
    """`1 h` is hourly, `1 d` daily, `7 d` weekly, 28 to 31 days monthly; None otherwise."""
    if sla is None or not isinstance(sla.value, int | float):
        return None
    unit = (sla.unit or "d").lower()
    hours = sla.value * {
        "h": 1,
        "hour": 1,
        "hours": 1,
        "d": 24,
        "day": 24,
        "days": 24,
        "w": 168,
        "week": 168,
    }.get(unit, 0)
    if unit in ("month", "months", "mo"):
        hours = sla.value * 24 * 31
    return next(
        (f for f, p in FREQUENCY_PERIODS.items() if abs(p.total_seconds() / 3600 - hours) < 1), None
    ) or ("monthly" if 28 * 24 <= hours <= 31 * 24 else None)


def _server_facts(server: Server) -> ContractServer:
    port = int(server.port) if server.port is not None and str(server.port).isdigit() else None
    return ContractServer(
        type=server.type or "",
        schema=server.schema_,
        database=server.database,
        host=server.host,
        port=port,
        catalog=server.catalog,
    )


def _dbt_version(version: str | None) -> str | None:
    match = re.fullmatch(r"(\d+)\.0\.0", version or "")
    if version == "1.0.0" or not version:
        return None
    return match.group(1) if match else version


def _custom_values(properties: Iterable[CustomProperty] | None) -> dict[str, Any]:
    return {p.property: p.value for p in properties or [] if p.property}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or ()]


# --- the standard's schema -----------------------------------------------------------------


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text("utf-8")
    )
    _only_if_present(schema)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _only_if_present(node: Any) -> None:
    """The schema's `if: {properties: {logicalType: {const: map}}}` holds when logicalType is
    absent too (JSON Schema's `properties` only constrains keys that are there), so a property
    without a logicalType would need a `map`. ODCS means "when logicalType is map", which is what
    datacontract lint checks: add the `required` the standard's authors meant."""
    if isinstance(node, dict):
        condition = node.get("if")
        if isinstance(condition, dict) and "properties" in condition and "required" not in condition:
            condition["required"] = sorted(condition["properties"])
        for value in node.values():
            _only_if_present(value)
    elif isinstance(node, list):
        for value in node:
            _only_if_present(value)


def _check_schema(document: Mapping[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    # A wrong value deep down also fails the branches above it ("'map' is a required property" of
    # a property whose primaryKey is not a boolean): say only the deepest, where the fix is.
    paths = [tuple(e.absolute_path) for e in errors]
    errors = [
        e
        for e, p in zip(errors, paths, strict=True)
        if not any(len(q) > len(p) and q[: len(p)] == p for q in paths)
    ]
    if errors:
        _refuse(*(Problem(_path(e.absolute_path), _message(e)) for e in errors[:20]))


def _message(error: jsonschema.ValidationError) -> str:
    # A oneOf/anyOf error's own message quotes the whole value; its closest sub-error says why.
    best = jsonschema.exceptions.best_match([error]) if error.context else error
    text = best.message
    text = text if len(text) <= 300 else text[:297] + "..."
    return text if text.endswith(".") else text + "."


def _path(parts: Iterable[Any]) -> str:
    path = "contract"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{'schema' if part == 'schema_' else part}"
    return path


def _refuse(*problems: Problem, headline: str = "The contract is not valid ODCS v3") -> NoReturn:
    shown = " ".join(f"{p.field}{_at(p.position)}: {p.message}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise InvalidInput(f"{headline}. {shown}{more}", problems=list(problems))


def _at(position: tuple[int, int] | None) -> str:
    return f" (line {position[0]}, column {position[1]})" if position else ""


def product_contract(
    service: PortalService, key: str, detail: ProductDetail | None = None
) -> tuple[str, str]:
    """(file name, YAML) of a product's contract: what the API and the page's download serve."""
    facts = facts_of(service, key, detail)
    return file_name(facts.name), contract_yaml(facts)
