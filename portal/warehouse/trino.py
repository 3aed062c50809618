"""The production warehouse: Trino (Iceberg tables in a Nessie catalog), through trino's
SQLAlchemy dialect.

The portal's user is passed to Trino as the session user, so Trino's own access control
decides what each person may read. On a Trino that authenticates its clients, the portal signs in
as its service user (`service_user`, with its password, over HTTPS) and sets the person as the
session user: Trino checks that the service user may impersonate them, then checks the person's
own rights. Every statement carries `query_max_run_time`, so Trino itself stops a query that
runs past the timeout, and runs in a read-only transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import requests
import sqlalchemy as sa
import trino.dbapi
from sqlalchemy.pool import NullPool
from sqlglot import exp
from trino.auth import BasicAuthentication
from trino.exceptions import HttpError

from portal.settings import SettingError, Settings
from portal.warehouse.base import (
    AccessDenied,
    ColumnInfo,
    QueryTimeout,
    Relation,
    RelationMissing,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)
from portal.warehouse.export import BATCH_ROWS


class TrinoWarehouse(Warehouse):
    dialect = "trino"
    engine_name = "Trino"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        catalog: str,
        user: str,
        http_scheme: str = "http",
        timeout_s: float,
        max_rows: int,
        service_user: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        super().__init__(timeout_s=timeout_s, max_rows=max_rows)
        self.host, self.port, self.catalog, self.user, self.http_scheme = (
            host,
            port,
            catalog,
            user,
            http_scheme,
        )
        # Who signs in: the service user when it has a password (the session user is then
        # impersonated); else the session user itself, on a Trino that trusts the name it is told.
        self.service_user = service_user or user
        self._password, self._ca_file = password, ca_file
        connect_args: dict[str, Any] = {
            "http_scheme": http_scheme,
            "session_properties": {"query_max_run_time": f"{max(1, int(self.timeout_s))}s"},
        }
        if password is not None:
            connect_args["auth"] = BasicAuthentication(self.service_user, password)
        self._engine = sa.create_engine(
            sa.URL.create("trino", username=user, host=host, port=port, database=catalog),
            connect_args=connect_args,
            poolclass=NullPool,
        )
        if ca_file:

            @sa.event.listens_for(self._engine, "do_connect")
            def _checked_against(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
                params["http_session"] = checked_session(ca_file)  # one per connection: it closes it

    def for_user(self, user: str) -> TrinoWarehouse:
        """The same warehouse, queried as `user` (Trino's access control applies to them)."""
        return TrinoWarehouse(
            host=self.host,
            port=self.port,
            catalog=self.catalog,
            user=user,
            http_scheme=self.http_scheme,
            timeout_s=self.timeout_s,
            max_rows=self.max_rows,
            service_user=self.service_user,
            password=self._password,
            ca_file=self._ca_file,
        )

    def status(self) -> str:
        signed_in = f", signed in as {self.service_user}" if self.service_user != self.user else ""
        return f"Trino {self.http_scheme}://{self.host}:{self.port} catalog {self.catalog} as {self.user}{signed_in}"

    def table(self, relation: Relation) -> exp.Table:
        return super().table(Relation(relation.database or self.catalog, relation.schema, relation.name))

    def _fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._refusals(), self._engine.connect() as con:
            result = con.exec_driver_sql(sql)
            return list(result.keys()), [tuple(row) for row in result.fetchall()]

    def _record_batches(self, sql: str) -> pa.RecordBatchReader:
        """The result as Arrow batches of rows fetched a page at a time (the client pages through
        Trino's results as they are read). The types are those of the first batch's values; Trino's
        own query_max_run_time bounds the query."""
        with self._refusals():
            con = self._engine.connect()
            try:
                result = con.exec_driver_sql(sql)
                names = list(result.keys())
                pages = result.partitions(BATCH_ROWS)
                declared = [arrow_type(d[1]) for d in (result.cursor.description or []) if result.cursor]
                first = _batch(names, next(pages, []), None, declared)
            except BaseException:
                con.close()
                raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield first
                with self._refusals():
                    for page in pages:
                        yield _batch(names, page, first.schema)
            finally:
                con.close()

        return pa.RecordBatchReader.from_batches(first.schema, batches())

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """Trino's and the client's errors as the portal's, each saying what to do."""
        try:
            yield
        except HttpError as exc:  # refused before any query: the sign-in
            if "401" in str(exc):
                raise WarehouseUnavailable(
                    f"Trino at {self.host}:{self.port} refused the portal's sign-in as {self.service_user}: "
                    "check PORTAL_TRINO_USER and PORTAL_TRINO_PASSWORD (or PORTAL_TRINO_PASSWORD_FILE)."
                ) from exc
            raise WarehouseUnavailable(f"Trino at {self.host}:{self.port} answered {exc}.") from exc
        except sa.exc.OperationalError as exc:
            raise WarehouseUnavailable(
                f"Trino at {self.host}:{self.port} did not answer ({exc.orig}). Start it (`make stack-up`) or "
                "check PORTAL_TRINO_HOST / PORTAL_TRINO_PORT."
            ) from exc
        except sa.exc.DBAPIError as exc:
            text = str(exc.orig)
            if "EXCEEDED_TIME_LIMIT" in text or "query_max_run_time" in text:
                raise QueryTimeout(
                    f"The query ran longer than {self.timeout_s:g} s and Trino stopped it. Ask for fewer rows "
                    "or raise PORTAL_QUERY_TIMEOUT_S."
                ) from exc
            if "cannot impersonate" in text:
                raise AccessDenied(
                    f"Trino does not let the portal's service user {self.service_user} act as {self.user}, so "
                    f"nothing can be read for them. An admin of Trino adds an impersonation rule for "
                    f"{self.service_user} (file-based access control: `impersonation`)."
                ) from exc
            if "PERMISSION_DENIED" in text or "Access Denied" in text:
                denied = text[text.find("Access Denied") :] if "Access Denied" in text else text
                raise AccessDenied(
                    f"Trino's access control does not let {self.user} read this: {denied.splitlines()[0]} "
                    "Queries run as you: ask its owners for access (the product page's Access tab), or "
                    "whoever grants access to that data in Trino."
                ) from exc
            if "TABLE_NOT_FOUND" in text or "does not exist" in text:
                raise RelationMissing(
                    f"{text}. Build the model on Trino first (`dbt build --target trino`)."
                ) from exc
            raise WarehouseError(f"Trino refused the query: {text}") from exc

    def describe(self, sql: str) -> list[ColumnInfo] | None:
        # Trino has no DESCRIBE for a bare query; typeof() of a returned row gives the types. With no
        # rows the types stay unknown (None), and a product is generated without an enforced contract.
        # The names come from the query with LIMIT 0, which Trino answers from its plan alone.
        names = list(self.query(f"SELECT * FROM ({sql}) AS dry_run LIMIT 0").columns)
        types = exp.select(*(exp.func("typeof", exp.column(name, quoted=True)) for name in names)).from_(
            exp.Subquery(this=exp.maybe_parse(sql, dialect="trino"), alias=exp.to_identifier("dry_run"))
        )
        rows = self.query(types.limit(1).sql(dialect="trino"))
        if rows.empty:
            return None
        return [ColumnInfo(str(name), str(kind)) for name, kind in zip(names, rows.iloc[0], strict=True)]

    def columns(self, relation: Relation) -> list[ColumnInfo]:
        catalog = relation.database or self.catalog
        sql = (
            f'select column_name, data_type from "{catalog}".information_schema.columns '
            f"where table_schema = '{_quote(relation.schema or '')}' and table_name = '{_quote(relation.name)}' "
            "order by ordinal_position"
        )
        names_rows = self._fetch(sql)[1]
        if not names_rows:
            # Trino hides a table from a user with no privilege on it: selecting nothing from it
            # tells "not yours to read" (AccessDenied, which says whom to ask) from "not there".
            self._fetch(f'select * from "{catalog}"."{relation.schema}"."{relation.name}" limit 0')
            raise RelationMissing(
                f"{catalog}.{relation.schema}.{relation.name} does not exist on Trino. "
                f"Build it with `dbt build --target trino --select {relation.name}`."
            )
        return [ColumnInfo(name, str(dtype)) for name, dtype in names_rows]


def service_password(settings: Settings) -> str | None:
    """The service user's password, refused over plain HTTP (it would travel in the clear)."""
    password = settings.trino_service_password()
    if password is not None and settings.trino_http_scheme != "https":
        raise SettingError(
            "PORTAL_TRINO_PASSWORD is set but PORTAL_TRINO_HTTP_SCHEME is http: a password goes to Trino "
            "over HTTPS only. Set PORTAL_TRINO_HTTP_SCHEME=https (and PORTAL_TRINO_PORT to Trino's HTTPS port)."
        )
    return password


def checked_session(ca_file: str) -> requests.Session:
    """An HTTP session that checks Trino's certificate against `ca_file` and nothing else.

    requests lets REQUESTS_CA_BUNDLE (set on many machines) override a session's own `verify`
    (psf/requests#3829), so the session ignores the environment; that also means no proxy from
    HTTPS_PROXY, which a coordinator the portal reaches directly does not need.
    """
    session = requests.Session()
    session.verify, session.trust_env = ca_file, False
    return session


def service_connection(settings: Settings, *, catalog: str | None = None) -> trino.dbapi.Connection:
    """A DB-API connection as the portal's service user, for what the portal does itself (branch
    catalogs of write-audit-publish, loading the demo), signed in when it has a password."""
    password = service_password(settings)
    return trino.dbapi.connect(
        host=settings.trino_host,
        port=settings.trino_port,
        user=settings.trino_user,
        catalog=catalog or settings.trino_catalog,
        http_scheme=settings.trino_http_scheme,
        auth=BasicAuthentication(settings.trino_user, password) if password is not None else None,
        http_session=checked_session(settings.trino_ca_file) if settings.trino_ca_file else None,
    )


_SCALARS = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    "varchar": pa.string(),
    "char": pa.string(),
    "varbinary": pa.binary(),
    "json": pa.string(),
    "uuid": pa.string(),
}


def arrow_type(trino_type: Any) -> pa.DataType | None:
    """The Arrow type of a column as Trino names it (`decimal(18,2)`, `timestamp(6) with time
    zone`, `varchar(10)`); None for types the values must tell (arrays, rows, maps)."""
    name = str(trino_type or "").strip().lower()
    base = name.split("(", 1)[0].strip()
    if base == "decimal":
        precision, _, scale = name[name.index("(") + 1 : name.index(")")].partition(",")
        return pa.decimal128(int(precision), int(scale or 0))
    if base == "timestamp":
        return pa.timestamp("us", tz="UTC") if "with time zone" in name else pa.timestamp("us")
    return _SCALARS.get(base)


def _batch(
    names: list[str],
    rows: Sequence[Any],
    schema: pa.Schema | None,
    declared: Sequence[pa.DataType | None] = (),
) -> pa.RecordBatch:
    """Rows as an Arrow batch, typed as `schema` says (the first batch's); the first batch is typed
    as Trino declared its columns, else by its values. A column no type is known for whose first
    page holds only NULLs is text: a later page's values could not be NULL-typed."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    if schema is None:
        arrays = []
        for index, values in enumerate(columns):
            kind = declared[index] if index < len(declared) else None
            array = pa.array(list(values), type=kind)
            if pa.types.is_null(array.type):
                array = pa.array(list(values), type=pa.string())
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, names=names)
    arrays = [
        pa.array([v if v is None or not pa.types.is_string(f.type) else str(v) for v in c], type=f.type)
        for c, f in zip(columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _quote(text: str) -> str:
    """Escape a string literal's quotes (names come from the manifest, but be safe)."""
    return text.replace("'", "''")
