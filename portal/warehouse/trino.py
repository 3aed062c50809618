"""The production warehouse: Trino (Iceberg tables in a Nessie catalog), through trino's
SQLAlchemy dialect.

The portal's user is passed to Trino as the session user, so Trino's own access control
decides what each person may read. Every statement carries `query_max_run_time`, so Trino
itself stops a query that runs past the timeout, and runs in a read-only transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from sqlglot import exp

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
    ) -> None:
        super().__init__(timeout_s=timeout_s, max_rows=max_rows)
        self.host, self.port, self.catalog, self.user, self.http_scheme = (
            host,
            port,
            catalog,
            user,
            http_scheme,
        )
        self._engine = sa.create_engine(
            sa.URL.create("trino", username=user, host=host, port=port, database=catalog),
            connect_args={
                "http_scheme": http_scheme,
                "session_properties": {"query_max_run_time": f"{max(1, int(self.timeout_s))}s"},
            },
            poolclass=NullPool,
        )

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
        )

    def status(self) -> str:
        return f"Trino {self.http_scheme}://{self.host}:{self.port} catalog {self.catalog} as {self.user}"

    def table(self, relation: Relation) -> exp.Table:
        return super().table(Relation(relation.database or self.catalog, relation.schema, relation.name))

    def _fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            with self._engine.connect() as con:
                result = con.exec_driver_sql(sql)
                return list(result.keys()), [tuple(row) for row in result.fetchall()]
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
            if "PERMISSION_DENIED" in text or "Access Denied" in text:
                denied = text[text.find("Access Denied") :] if "Access Denied" in text else text
                raise AccessDenied(
                    f"Trino's access control does not let {self.user} read this: {denied.splitlines()[0]} "
                    "Queries run as you, so ask whoever grants access to that data in Trino."
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
            raise RelationMissing(
                f"{catalog}.{relation.schema}.{relation.name} does not exist on Trino. "
                f"Build it with `dbt build --target trino --select {relation.name}`."
            )
        return [ColumnInfo(name, str(dtype)) for name, dtype in names_rows]


def _quote(text: str) -> str:
    """Escape a string literal's quotes (names come from the manifest, but be safe)."""
    return text.replace("'", "''")
