"""Validate an analyst's SQL and rewrite the tables it reads into dbt `ref()` and `source()` calls.

User SQL is parsed, never pasted (DESIGN principle 6). `validate_sql` runs, in this order:

1. cheap text checks *before* parsing: length, control characters, Jinja, and bracket nesting
   depth (sqlglot's parser is recursive, so a parenthesis bomb would otherwise exhaust the stack);
2. parse with sqlglot in the warehouse's dialect: exactly one statement, a SELECT or a set
   operation of SELECTs (CTEs allowed);
3. an ALLOWLIST walk over the syntax tree: every node class and every function must be on a
   list. Statements (DDL, DML, COPY, ATTACH, PRAGMA, SET, INSTALL, ...) and functions that touch
   files, URLs or the system (`read_csv`, `glob`, `getenv`, Trino's `system.query`, ...) fall out
   because nobody put them on the list; a denylist would let through whatever it forgot;
4. every table read must be a source or model of the project (CTE names excepted, in scope);
5. the tree is rebuilt twice: once with `{{ source() }}` / `{{ ref() }}` for the dbt model, once
   with the real relation names for a dry run against the warehouse.

Every refusal is a `Problem` saying what is wrong and how to fix it, with a (line, column)
position in the SQL when sqlglot knows one.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ParseError, TokenError

from portal.creation.spec import MAX_SQL_LENGTH, Problem, line_col, text_problems
from portal.errors import InvalidInput
from portal.project.artifacts import Manifest, Node

DIALECTS = ("duckdb", "trino")
# sqlglot needs roughly 23 Python frames per nested parenthesis; 20 levels stay well inside the
# default recursion limit even when called from a deep stack (Streamlit, a test runner), and
# real analytical SQL rarely nests more than ten.
DEFAULT_MAX_DEPTH = 20

# --- the allowlists -------------------------------------------------------------------------

# Query structure, operators and literals: what a SELECT is made of.
_STRUCTURE: frozenset[type[exp.Expr]] = frozenset(
    {
        # queries and their clauses
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
        exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Qualify, exp.Order, exp.Ordered,
        exp.Limit, exp.Offset, exp.Distinct, exp.Values, exp.Table, exp.TableAlias, exp.Alias,
        exp.Window, exp.WindowSpec, exp.Cube, exp.Rollup, exp.GroupingSets,
        # names and values
        exp.Column, exp.Identifier, exp.Star, exp.Dot, exp.Bracket, exp.Literal, exp.Boolean,
        exp.Null, exp.Var, exp.DataType, exp.DataTypeParam, exp.Interval, exp.Tuple, exp.Paren,
        exp.Array, exp.Struct, exp.PropertyEQ, exp.Lambda, exp.Slice,
        exp.JSONPath, exp.JSONPathKey, exp.JSONPathRoot, exp.JSONPathSubscript, exp.JSONPathWildcard,
        # predicates and operators
        exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.And, exp.Or, exp.Not, exp.Xor, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
        exp.Escape, exp.SimilarTo, exp.Exists, exp.Any, exp.All,
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.DPipe,
        exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot,
        exp.BitwiseLeftShift, exp.BitwiseRightShift,
        exp.Case, exp.If, exp.Cast, exp.TryCast, exp.Try, exp.AtTimeZone,
        # aggregate modifiers
        exp.Filter, exp.WithinGroup, exp.IgnoreNulls, exp.RespectNulls,
        # UNNEST reads a column of the row, never storage
        exp.Unnest, exp.Explode,
    }
)  # fmt: skip

# Functions sqlglot knows by name (typed nodes). Pure computations on their arguments only.
_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        # aggregates
        exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.AnyValue, exp.CountIf, exp.ApproxDistinct,
        exp.ApproxQuantile, exp.ArgMax, exp.ArgMin, exp.ArrayAgg, exp.GroupConcat, exp.LogicalAnd,
        exp.LogicalOr, exp.Median, exp.Mode, exp.Quantile, exp.PercentileCont, exp.PercentileDisc,
        exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop, exp.Corr,
        exp.CovarPop, exp.CovarSamp, exp.RegrSlope, exp.RegrIntercept, exp.Kurtosis, exp.Skewness,
        exp.First, exp.Last, exp.Grouping, exp.List,
        # window functions
        exp.RowNumber, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile, exp.Lag,
        exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue,
        # numbers
        exp.Abs, exp.Ceil, exp.Floor, exp.Round, exp.Trunc, exp.Sign, exp.Sqrt, exp.Cbrt, exp.Pow,
        exp.Exp, exp.Ln, exp.Log, exp.Greatest, exp.Least, exp.Rand, exp.Degrees, exp.Radians,
        exp.Sin, exp.Cos, exp.Tan, exp.Factorial, exp.WidthBucket, exp.SafeDivide,
        # conditionals
        exp.Coalesce, exp.Nullif, exp.Typeof,
        # text
        exp.Upper, exp.Lower, exp.Length, exp.BitLength, exp.Substring, exp.Trim, exp.Concat,
        exp.ConcatWs, exp.Replace, exp.Left, exp.Right, exp.Pad, exp.StrPosition, exp.Initcap,
        exp.Reverse, exp.Split, exp.SplitPart, exp.RegexpLike, exp.RegexpExtract,
        exp.RegexpExtractAll, exp.RegexpReplace, exp.StartsWith, exp.EndsWith, exp.Contains,
        exp.Chr, exp.Ascii, exp.Levenshtein, exp.JarowinklerSimilarity, exp.Normalize, exp.Hex,
        exp.Unhex, exp.MD5, exp.MD5Digest, exp.SHA, exp.SHA2, exp.SHA2Digest, exp.ToBase64,
        exp.FromBase64, exp.Uuid, exp.ToChar,
        # dates and times
        exp.CurrentDate, exp.CurrentTimestamp, exp.Localtimestamp, exp.DateTrunc,
        exp.TimestampTrunc, exp.DateAdd, exp.DateSub, exp.DateDiff, exp.DateBin, exp.Extract,
        exp.Year, exp.Quarter, exp.Month, exp.Week, exp.WeekOfYear, exp.YearOfWeek, exp.Day,
        exp.DayOfMonth, exp.DayOfWeek, exp.DayOfWeekIso, exp.DayOfYear, exp.Dayname,
        exp.Monthname, exp.Hour, exp.Minute, exp.Second, exp.LastDay, exp.DateFromParts,
        exp.TimestampFromParts, exp.StrToDate, exp.StrToTime, exp.ParseDatetime, exp.TimeToStr,
        exp.TimeToUnix, exp.UnixToTime, exp.TimeStrToTime, exp.TsOrDsToDate, exp.ToDays,
        exp.FromISO8601Date, exp.FromISO8601Timestamp,
        # arrays, structs, JSON values (never JSON files)
        exp.ArraySize, exp.ArrayContains, exp.ArrayFilter, exp.Transform, exp.ArrayDistinct,
        exp.ArrayMax, exp.ArrayMin, exp.ArrayPosition, exp.ArrayRemove, exp.ArraySlice,
        exp.ArraySort, exp.ArrayToString, exp.Flatten, exp.StructExtract, exp.JSONExtract,
        exp.JSONExtractScalar, exp.JSONValue,
    }
)  # fmt: skip

ALLOWED_NODES: frozenset[type[exp.Expr]] = _STRUCTURE | _FUNCTIONS

# Functions sqlglot parses as `Anonymous` (it has no typed node for them) that are safe:
# scalar, aggregate and window functions of DuckDB or Trino that compute on their arguments.
# Nothing here reads a file, a URL, a setting, the environment or another query.
ALLOWED_ANONYMOUS_FUNCTIONS = frozenset(
    {
        # DuckDB scalar
        "age", "date_part", "datepart", "date_sub", "hash", "now", "printf", "epoch", "epoch_ms",
        "make_date", "make_time", "make_timestamp", "to_timestamp", "strftime", "strptime",
        "time_bucket", "isoyear", "weekday", "yearweek", "century", "decade", "millennium",
        "to_months", "to_years", "jaccard", "damerau_levenshtein", "hamming", "suffix", "prefix",
        "round_even", "even", "gcd", "lcm", "gamma", "isfinite", "octet_length", "bit_count",
        "format_bytes", "list_extract", "list_contains", "list_value", "list_transform",
        "list_filter", "list_sort", "list_distinct", "list_aggregate", "list_sum",
        "regexp_matches", "string_split", "str_split", "json_extract_string",
        # DuckDB aggregates
        "geomean", "geometric_mean", "entropy", "histogram", "product", "quantile_cont",
        "quantile_disc", "approx_percentile",
        # Trino scalar
        "codepoint", "format_datetime", "date_format", "date_parse", "to_iso8601", "to_date",
        "from_unixtime", "to_unixtime", "to_milliseconds", "human_readable_seconds",
        "levenshtein_distance", "hamming_distance", "with_timezone", "element_at", "cardinality",
        "arrays_overlap", "array_sort", "slice", "nan", "infinity", "jaro_winkler_similarity",
        # Trino aggregates
        "arbitrary", "every", "checksum", "map_agg",
    }
)  # fmt: skip

# DuckDB's list_aggregate (and its aliases) call an aggregate by its name, given as a string.
_NAMES_AN_AGGREGATE = frozenset({"list_aggregate", "list_aggr", "array_aggregate", "array_aggr", "aggregate"})
LIST_AGGREGATES = frozenset(
    {
        "sum", "avg", "mean", "min", "max", "count", "first", "last", "any_value", "median", "mode",
        "product", "string_agg", "stddev", "stddev_pop", "stddev_samp", "var_pop", "var_samp",
        "variance", "bool_and", "bool_or", "entropy", "approx_count_distinct", "kurtosis",
        "skewness", "bit_and", "bit_or", "bit_xor", "histogram",
    }
)  # fmt: skip

# How a refused node class is named in a message, where its class name would mean nothing.
_DESCRIPTIONS: Mapping[type[exp.Expr], str] = {
    exp.Into: "SELECT ... INTO (it creates a table)",
    exp.Placeholder: "a query parameter (`?` or `$1`)",
    exp.Parameter: "a variable or parameter",
    exp.SessionParameter: "a session variable",
    exp.HistoricalData: "time travel (AT / BEFORE)",
    exp.Version: "time travel (FOR VERSION/TIMESTAMP AS OF)",
    exp.TableSample: "TABLESAMPLE / USING SAMPLE",
    exp.Pivot: "PIVOT / UNPIVOT",
    exp.Lateral: "LATERAL",
    exp.Kwarg: "a named argument (`name => value`)",
    exp.Command: "a command",
    exp.Lock: "FOR UPDATE / FOR SHARE locking",
}

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# 'dir/file', 's3://bucket/x', 'C:\\x', 'orders.parquet': what DuckDB would read as a file or URL.
_PATH_HINT = re.compile(
    r"[/\\:]|\.(csv|tsv|txt|parquet|json|jsonl|ndjson|xlsx?|gz|zst|arrow|avro|orc|db|duckdb|sqlite)$",
    re.IGNORECASE,
)
_REMEDY = (
    "Write one SELECT query (CTEs and UNION allowed) over the project's sources and models; "
    "the portal creates and fills the table itself."
)


# --- the relations a query may read --------------------------------------------------------


@dataclass(frozen=True)
class TableReference:
    """A source or model of the project that user SQL may read (a table its FROM may name), and
    how dbt refers to it. Not the warehouse's `Relation`, which says where a built model lives."""

    unique_id: str
    kind: str  # "source" or "model"
    ref_args: tuple[str, ...]  # ('silver', 'orders') for source(), ('stg_orders',) for ref()
    schema: str
    identifier: str

    @property
    def label(self) -> str:
        return ".".join(self.ref_args)

    @property
    def jinja(self) -> str:
        # Only names matching _SAFE_NAME ever get here (see _table_reference), so quoting cannot break.
        function = "source" if self.kind == "source" else "ref"
        return "{{ " + function + "(" + ", ".join(f"'{arg}'" for arg in self.ref_args) + ") }}"


def _table_reference(node: Node, project: str | None) -> TableReference | None:
    """The TableReference of a source or model node; None when its names could not be written safely."""
    if node.resource_type == "source" and node.source_name:
        args: tuple[str, ...] = (node.source_name, node.name)
        kind = "source"
    elif node.resource_type == "model":
        # A model of an installed package is ref('package', 'model'); the project's own, ref('model').
        args = (node.name,) if not project or node.package_name == project else (node.package_name, node.name)
        kind = "model"
    else:
        return None
    identifier = node.alias or node.name
    names = (*args, identifier, node.schema or "")
    # Names with other characters could not be put into Jinja or SQL without escaping; they are
    # left out (they would be reported as unknown) rather than escaped.
    if not all(_SAFE_NAME.match(name) for name in names):
        return None
    return TableReference(node.unique_id, kind, args, node.schema or "", identifier)


def _spellings(node: Node, relation: TableReference, catalogs: Iterable[str]) -> set[tuple[str, ...]]:
    """Every way a user may write the relation in SQL, as lower-case name parts."""
    schema, identifier = relation.schema, relation.identifier
    forms: set[tuple[str, ...]] = {(schema, identifier)}
    if relation.kind == "source":
        forms.add(relation.ref_args)  # source name + table name, as dbt's source() takes them
    else:
        forms |= {(node.name,), (schema, node.name)}
    for catalog in {*catalogs, node.database or ""} - {""}:
        forms.add((catalog, schema, identifier))
    return {tuple(part.lower() for part in form) for form in forms}


@dataclass(frozen=True)
class KnownRelations:
    """The project's sources and models by every spelling a user may write in SQL.

    A spelling that fits several relations (a seed-like source and a model at the same
    schema.table, say) is kept with all of them, so the refusal can list the choices.
    """

    by_spelling: Mapping[tuple[str, ...], tuple[TableReference, ...]]
    catalogs: tuple[str, ...] = ()  # every catalog name accepted in three-part names
    withheld: Mapping[str, str] = field(default_factory=dict)  # model name -> why it may not be read

    @classmethod
    def from_manifest(cls, manifest: Manifest, *, catalogs: Iterable[str] = ()) -> KnownRelations:
        """Sources and models of `manifest`. `catalogs` are extra names of the warehouse catalog
        (e.g. `nessie` on Trino, the DuckDB database name); each node's own database is added."""
        return cls.from_nodes(
            [*manifest.sources.values(), *manifest.models()], catalogs=catalogs, project=manifest.project_name
        )

    @classmethod
    def from_nodes(
        cls, nodes: Iterable[Node], *, catalogs: Iterable[str] = (), project: str | None = None
    ) -> KnownRelations:
        extra = tuple(catalogs)
        index: dict[tuple[str, ...], dict[str, TableReference]] = {}
        databases: dict[str, None] = dict.fromkeys(extra)
        for node in nodes:
            relation = _table_reference(node, project)
            if relation is None:
                continue
            for spelling in _spellings(node, relation, extra):
                index.setdefault(spelling, {})[relation.unique_id] = relation
            if node.database:
                databases[node.database] = None
        return cls({key: tuple(found.values()) for key, found in index.items()}, tuple(databases))

    def relations(self) -> list[TableReference]:
        """Every relation SQL may read, once each, by label."""
        found = {r.unique_id: r for refs in self.by_spelling.values() for r in refs}
        return sorted(found.values(), key=lambda r: r.label)

    def lookup(self, parts: tuple[str, ...]) -> tuple[TableReference, ...]:
        return self.by_spelling.get(tuple(part.lower() for part in parts), ())

    def excluding(self, unique_id: str) -> KnownRelations:
        """Without one relation: a product being edited must not read itself."""
        kept = {
            key: tuple(r for r in found if r.unique_id != unique_id)
            for key, found in self.by_spelling.items()
        }
        return KnownRelations(
            {key: found for key, found in kept.items() if found}, self.catalogs, self.withheld
        )

    def withholding(self, reasons: Mapping[str, str]) -> KnownRelations:
        """Without the models named in `reasons` (products never published): SQL that reads one is
        refused with its reason, so no product depends on files that may fail or be discarded."""
        names = {name.lower() for name in reasons}
        kept = {
            key: tuple(r for r in found if not (r.kind == "model" and r.ref_args[-1].lower() in names))
            for key, found in self.by_spelling.items()
        }
        withheld = {**self.withheld, **{name.lower(): reason for name, reason in reasons.items()}}
        return KnownRelations({key: found for key, found in kept.items() if found}, self.catalogs, withheld)

    def suggestions(self, parts: tuple[str, ...], limit: int = 3) -> list[str]:
        """Known spellings closest to what was written, best first."""
        written = ".".join(parts).lower()
        candidates = {".".join(key) for key in self.by_spelling if len(key) <= max(len(parts), 2)}
        return difflib.get_close_matches(written, sorted(candidates), n=limit, cutoff=0.6)


# --- the result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardResult:
    """The verdict on user SQL.

    `rewritten_sql` is the model body with `{{ source() }}` / `{{ ref() }}`; `normalized_sql`
    is the same query with the warehouse's real relation names, for a dry run (EXPLAIN);
    `upstream` the unique ids read, in order of first appearance. All None/empty unless `ok`.
    """

    ok: bool
    problems: list[Problem]
    rewritten_sql: str | None = None
    upstream: list[str] = field(default_factory=list)
    normalized_sql: str | None = None

    @classmethod
    def refused(cls, problems: list[Problem]) -> GuardResult:
        return cls(ok=False, problems=problems)


class _Refusal(InvalidInput):
    """Internal: stop analysing and report these problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(" ".join(p.message for p in problems), problems=problems)
        self.problems = problems


def validate_sql(
    sql: str,
    *,
    dialect: str,
    known: KnownRelations,
    max_length: int = MAX_SQL_LENGTH,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> GuardResult:
    """Check `sql` and rewrite it into a dbt model body; see the module docstring for the steps."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect {dialect!r} is not supported; use one of {', '.join(DIALECTS)}")
    problems = _text_problems(sql, max_length, max_depth)
    if problems:
        return GuardResult.refused(problems)
    columns: list[Problem] = []
    try:
        tree = _parse_one(sql, dialect)
        _check_structure(tree, sql, dialect)
        columns = _column_problems(tree, sql, dialect)
        relations = _resolve(tree, sql, known)  # an unknown table is news as well as a bad name
        if columns:
            return GuardResult.refused(columns)
        rewritten = _rewrite_for_dbt(tree, sql, dialect, relations)
        normalized = _generate(_replace_tables(tree, relations, _warehouse_table), dialect)
        _check_output(normalized, dialect, relations)
    except _Refusal as refusal:
        return GuardResult.refused([*columns, *refusal.problems])
    except RecursionError:
        return GuardResult.refused([_too_deep()])
    upstream = list(dict.fromkeys(relation.unique_id for relation in relations))
    return GuardResult(
        ok=True, problems=[], rewritten_sql=rewritten, upstream=upstream, normalized_sql=normalized
    )


# --- 1. before parsing ---------------------------------------------------------------------


def _text_problems(sql: str, max_length: int, max_depth: int) -> list[Problem]:
    problems = text_problems("sql", sql, max_length=max_length, multiline=True)
    if problems:
        return problems
    if not sql.strip():
        return [Problem("sql", "The SQL is empty. Write the SELECT query that computes the product.")]
    offset = _first_too_deep(sql, max_depth)
    if offset is not None:
        return [
            Problem(
                "sql",
                f"The SQL nests brackets more than {max_depth} levels deep, the most the portal analyses. "
                "Flatten it: move inner parts into CTEs (WITH name AS (...)).",
                line_col(sql, offset),
            )
        ]
    return []


def _first_too_deep(sql: str, max_depth: int) -> int | None:
    """Offset of the first bracket beyond `max_depth`. Brackets inside strings count too: being
    conservative here costs nothing real and keeps this scan independent of SQL's quoting rules."""
    depth = 0
    for offset, char in enumerate(sql):
        if char in "([{":
            depth += 1
            if depth > max_depth:
                return offset
        elif char in ")]}":
            depth = max(depth - 1, 0)
    return None


def _too_deep() -> Problem:
    return Problem(
        "sql",
        "The SQL is nested too deeply to analyse (e.g. many NOTs, CASEs or subqueries inside each other). "
        "Flatten it: move inner parts into CTEs (WITH name AS (...)).",
    )


# --- 2. parsing ----------------------------------------------------------------------------


def _parse_one(sql: str, dialect: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        raise _Refusal([_parse_problem(exc, dialect)]) from exc
    except TokenError as exc:
        raise _Refusal(
            [
                Problem(
                    "sql",
                    "The SQL could not be read: a quote, quoted name or comment is not closed. Close it.",
                )
            ]
        ) from exc
    except RecursionError:
        raise
    except Exception as exc:  # hostile input must never escape as a crash
        raise _Refusal(
            [Problem("sql", f"The SQL could not be read as {dialect} SQL ({exc}). Check its syntax.")]
        ) from exc
    if len(statements) != 1:
        raise _Refusal(
            [
                Problem(
                    "sql",
                    f"The SQL holds {len(statements)} statements; a data product is exactly one SELECT query. "
                    "Remove the others (and any `;` between them).",
                    _position(statements[1], sql) if len(statements) > 1 else None,
                )
            ]
        )
    return statements[0]


def _parse_problem(exc: ParseError, dialect: str) -> Problem:
    """sqlglot's first error, reworded for people: no token or class reprs."""
    first = exc.errors[0] if exc.errors else {}
    detail = str(first.get("description") or "unexpected input")
    detail = re.sub(r"<Token token_type: [\w.]+, text: ([^,]*),[^>]*>", r"`\1`", detail)
    detail = re.sub(
        r"Required keyword: '\w+' missing for <class '[\w.]*\.(\w+)'>", r"an incomplete \1", detail
    )
    highlight = str(first.get("highlight") or "")
    near = f" near `{highlight}`" if highlight else ""
    where = None
    if isinstance(first.get("line"), int) and isinstance(first.get("col"), int):
        # sqlglot reports the column where the offending token ends; point at its start.
        where = (first["line"], max(first["col"] - len(highlight) + 1, 1))
    return Problem(
        "sql", f"The SQL does not parse as {dialect} SQL{near}: {detail}. Fix the syntax there.", where
    )


# --- 3 and 4. what the tree may hold -------------------------------------------------------


def _check_structure(tree: exp.Expr, sql: str, dialect: str) -> None:
    """Raise a _Refusal unless the tree is one query made only of allowed nodes and functions."""
    if not _is_query(tree):
        # The statement's first word (COPY, ATTACH, CHECKPOINT...), whatever node sqlglot made of it.
        word = tree.name if isinstance(tree, exp.Command) else _snippet(tree, dialect).split(" ")[0]
        raise _Refusal(
            [
                Problem(
                    "sql",
                    f"The SQL is not a query: `{word.upper()}` statements are not allowed. {_REMEDY}",
                    _position(tree, sql),
                )
            ]
        )
    problems = _node_problems(tree, sql, dialect)
    if problems:
        raise _Refusal(problems)


def _column_problems(tree: exp.Expr, sql: str, dialect: str) -> list[Problem]:
    """Unless every column the query names is named plainly and once, what is wrong.

    The column names become the product's YAML keys and its table's columns: a name with a line
    break in it would be written as a YAML block, a nameless expression gets a name nobody chose
    (`count_star()`), and a name given twice is silently renamed by the warehouse (`order_id_1`).
    Columns of a `*` are the upstream relation's, already named.
    """
    select = tree
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this  # a UNION is named by its first branch
    if not isinstance(select, exp.Select):
        return []
    problems, seen = [], set()
    for item in select.expressions:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            continue
        if isinstance(item, exp.Alias):
            name = item.alias
        elif isinstance(item, exp.Column):
            name = item.name
        else:
            problems.append(
                Problem(
                    "sql",
                    f"The column `{_snippet(item, dialect)}` has no name. Write one with `AS`, e.g. "
                    f"`{_snippet(item, dialect, 30)} AS {_suggested_name(item)}`.",
                    _position(item, sql),
                )
            )
            continue
        if not _SAFE_NAME.match(name):
            problems.append(
                Problem(
                    "sql",
                    f"The column name {_shown_name(name)} holds characters other than letters, digits and `_` "
                    "(or starts with a digit). Rename it using only those, e.g. `net_revenue`.",
                    _position(item, sql),
                )
            )
        elif name.lower() in seen:
            problems.append(
                Problem(
                    "sql",
                    f"The column `{name}` is named twice; the warehouse would rename the second one. Rename one "
                    "of them with `AS`, so each column has its own name.",
                    _position(item, sql),
                )
            )
        seen.add(name.lower())
    return problems


def _suggested_name(item: exp.Expr) -> str:
    words = [c.name for c in item.find_all(exp.Column) if _SAFE_NAME.match(c.name)]
    function = item.key if isinstance(item, exp.Func) else "value"
    return "_".join([function, *words[:1]]).lower()


def _shown_name(name: str) -> str:
    printable = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in name)
    return f"`{printable}`"


def _is_query(tree: exp.Expr) -> bool:
    while isinstance(tree, exp.Subquery):  # "(SELECT ...)" as a whole statement
        tree = tree.this
    return isinstance(tree, exp.Select | exp.SetOperation)


def _children(node: exp.Expr) -> list[exp.Expr]:
    return list(node.iter_expressions())


def _node_problems(tree: exp.Expr, sql: str, dialect: str) -> list[Problem]:
    problems = []
    stack = [tree]
    while stack:
        node = stack.pop()
        problem = _node_problem(node, sql, dialect)
        if problem is not None:
            problems.append(problem)
            continue  # one problem per construct: its insides would only repeat it
        stack.extend(reversed(_children(node)))
    return problems


def _node_problem(node: exp.Expr, sql: str, dialect: str) -> Problem | None:
    kind = type(node)
    if kind in (exp.Anonymous, exp.AnonymousAggFunc):
        if node.name.lower() in _NAMES_AN_AGGREGATE:
            return _named_aggregate_problem(node, sql)
        if node.name.lower() in ALLOWED_ANONYMOUS_FUNCTIONS:
            return None
        return _function_problem(node.name, node, sql)
    if kind not in ALLOWED_NODES:
        if issubclass(kind, exp.Func):
            return _function_problem(kind.sql_name(), node, sql)
        what = _DESCRIPTIONS.get(kind) or f"`{_snippet(node, dialect)}` ({kind.__name__})"
        return Problem(
            "sql", f"Not allowed in a data product: {what}. Remove it. {_REMEDY}", _position(node, sql)
        )
    if kind is exp.With and node.args.get("recursive"):
        return Problem(
            "sql",
            "WITH RECURSIVE is not allowed: a recursive CTE can run without end. Compute the rows "
            "with joins, or ask for an upstream model that holds them.",
            _position(node, sql),
        )
    if kind is exp.Dot and any(isinstance(child, exp.Func) for child in _children(node)):
        return Problem(
            "sql",
            f"`{_snippet(node, dialect)}` calls a function through a catalog or schema, which is not allowed "
            "(it could reach connectors or stored procedures). Call built-in functions by their plain name.",
            _position(node, sql),
        )
    if isinstance(node, exp.Table):
        return _table_shape_problem(node, sql, dialect)
    return None


def _named_aggregate_problem(node: exp.Expr, sql: str) -> Problem | None:
    """`list_aggregate(list, 'name')` calls the aggregate *named* by a string: only a literal
    name from LIST_AGGREGATES, or it would call any function around the allowlist."""
    arguments = node.expressions
    named = arguments[1] if len(arguments) >= 2 else None
    if isinstance(named, exp.Literal) and named.is_string and named.name.lower() in LIST_AGGREGATES:
        return None
    shown = f"`{named.sql()}`" if named is not None else "no name"
    return Problem(
        "sql",
        f"`{node.name.lower()}` applies the aggregate named by its second argument, here {shown}. Write a "
        f"quoted name from {', '.join(sorted(LIST_AGGREGATES))}, e.g. `{node.name.lower()}(prices, 'sum')`.",
        _position(node, sql),
    )


def _function_problem(name: str, node: exp.Expr, sql: str) -> Problem:
    return Problem(
        "sql",
        f"The function `{name.lower()}` is not allowed. Data products compute with standard scalar, "
        "aggregate and window functions on the project's sources and models; functions that read files, "
        "URLs, settings or other systems are never allowed. If you need a harmless function that is "
        "missing, ask the platform team to add it to the allowlist (portal/creation/sqlguard.py).",
        _position(node, sql),
    )


def _table_shape_problem(table: exp.Table, sql: str, dialect: str) -> Problem | None:
    """A table reference must be a plain name of at most three parts, not a function or a path."""
    where = _position(table, sql)
    target = table.this
    if isinstance(target, exp.Dot):
        return Problem(
            "sql",
            f"`{_snippet(table, dialect)}` has more than three name parts. Write schema.table or catalog.schema.table.",
            where,
        )
    if not isinstance(target, exp.Identifier):
        return Problem(
            "sql",
            f"Reading from the table function `{_snippet(target, dialect)}` is not allowed. "
            "Read from the project's sources and models by name (e.g. silver.orders or stg_orders).",
            where,
        )
    parts = _table_parts(table)
    if any(_PATH_HINT.search(part) for part in parts):
        return Problem(
            "sql",
            f"`{_written(table)}` looks like a file or URL. Reading files or URLs is not allowed; ask the "
            "platform team to load the data as a source, then read the source by name.",
            where,
        )
    return None


def _table_parts(table: exp.Table) -> tuple[str, ...]:
    return tuple(part.name for part in table.parts)


def _written(table: exp.Table) -> str:
    """The table name as the user wrote it, quotes included: `"silver.orders"` is one name."""
    return ".".join(f'"{part.name}"' if part.args.get("quoted") else part.name for part in table.parts)


def _resolve(tree: exp.Expr, sql: str, known: KnownRelations) -> list[TableReference]:
    """The relation of every table reference that is not a CTE in scope, in document order;
    a _Refusal naming each one that is unknown or ambiguous."""
    relations, problems = [], []
    for table in _real_tables(tree):
        found = known.lookup(_table_parts(table))
        if len(found) == 1:
            relations.append(found[0])
        else:
            problems.append(_unknown_table(table, found, known, _position(table, sql)))
    if problems:
        raise _Refusal(problems)
    return relations


def _real_tables(tree: exp.Expr) -> Iterator[exp.Table]:
    """Table references that are not CTEs in scope, in document order.

    CTE scoping follows SQL: a CTE is visible to the CTEs after it and to the query it belongs
    to (and their subqueries), not to its own body (WITH RECURSIVE is refused) nor outside. So in
    `WITH stg_orders AS (SELECT * FROM stg_orders) SELECT * FROM stg_orders` the inner name is
    the real model and the outer one the CTE. Qualified names (schema.table) are never CTEs.
    """
    stack: list[tuple[exp.Expr, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, ctes = stack.pop()
        if isinstance(node, exp.Table):
            if node.args.get("db") or node.name.lower() not in ctes:
                yield node
            continue
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        pending: list[tuple[exp.Expr, frozenset[str]]] = []
        visible = ctes
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                pending.append((cte.this, visible))
                visible = visible | {cte.alias_or_name.lower()}
        pending += [(child, visible) for child in _children(node) if child is not with_]
        stack.extend(reversed(pending))


def _unknown_table(
    table: exp.Table, found: tuple[TableReference, ...], known: KnownRelations, where: tuple[int, int] | None
) -> Problem:
    parts, written = _table_parts(table), _written(table)
    if found:
        choices = " or ".join(f"`{relation.label}`" for relation in found)
        return Problem(
            "sql",
            f"`{written}` could mean several relations of the project ({choices}). "
            "Write it so that it names one, e.g. with its model name or source name.",
            where,
        )
    if parts[-1].lower() in known.withheld:
        return Problem("sql", known.withheld[parts[-1].lower()], where)
    message = f"The table `{written}` is not a source or model of the project."
    if any("." in part for part in parts):
        message += " A quoted name is one name, dots included: write schema and table as separate names (silver.orders)."
    elif len(parts) == 3 and known.lookup(parts[1:]):
        catalogs = ", ".join(f"`{c}`" for c in known.catalogs) or "none configured"
        message += f" The catalog `{parts[0]}` is not the warehouse's (known: {catalogs}); did you mean `{'.'.join(parts[1:])}`?"
    else:
        close = known.suggestions(parts)
        if close:
            message += " Did you mean " + " or ".join(f"`{name}`" for name in close) + "?"
    message += " Only the project's sources and models can be read; pick one from the catalog."
    return Problem("sql", message, where)


# --- 5. rewriting --------------------------------------------------------------------------


def _replace_tables(
    tree: exp.Expr, relations: list[TableReference], make: Callable[[TableReference], exp.Table]
) -> exp.Expr:
    """A copy of `tree` with its real tables (`relations`, as `_resolve` found them) replaced by
    `make(relation)`, keeping what the rest of the query calls them: the user's alias, or else
    the name as written."""
    copy = tree.copy()
    resolved = list(zip(_real_tables(copy), relations, strict=True))
    _unqualify_columns(copy, [table for table, _ in resolved if not table.alias])
    for table, relation in resolved:
        alias = table.args.get("alias") or exp.TableAlias(this=table.this.copy())
        replacement = make(relation)
        replacement.set("alias", alias)
        table.replace(replacement)
    return copy


def _unqualify_columns(tree: exp.Expr, unaliased: list[exp.Table]) -> None:
    """`silver.orders.amount` -> `orders.amount`. An unaliased table gets its written name as
    alias, so a column qualified with the schema would no longer resolve after the rewrite."""
    written = [tuple(p.lower() for p in _table_parts(t)) for t in unaliased if t.args.get("db")]
    if not written:
        return
    for column in tree.find_all(exp.Column):
        qualifier = tuple(p.name.lower() for p in column.parts[:-1])
        # (db, table) or (catalog, db, table), matching the end of how the table was written
        if len(qualifier) >= 2 and any(parts[-len(qualifier) :] == qualifier for parts in written):
            column.set("catalog", None)
            column.set("db", None)


def _warehouse_table(relation: TableReference) -> exp.Table:
    return exp.Table(
        this=exp.Identifier(this=relation.identifier, quoted=True),
        db=exp.Identifier(this=relation.schema, quoted=True),
    )


def _rewrite_for_dbt(tree: exp.Expr, sql: str, dialect: str, relations: list[TableReference]) -> str:
    """The model body with `{{ source() }}` / `{{ ref() }}`.

    sqlglot cannot emit Jinja, so each table becomes a placeholder identifier carrying a random
    nonce (checked absent from the input), and placeholders are swapped for Jinja after the SQL is
    generated. The generated text is checked for Jinja *before* the swap, so the only Jinja in the
    result is what we put there, built from manifest names that match `^[A-Za-z_][A-Za-z0-9_]*$`.
    """
    nonce = secrets.token_hex(8)
    while nonce in sql:  # pragma: no cover - 64 random bits
        nonce = secrets.token_hex(8)
    used: list[TableReference] = []

    def placeholder(relation: TableReference) -> exp.Table:
        used.append(relation)
        return exp.Table(this=exp.Identifier(this=f"__asgard_{nonce}_{len(used) - 1}", quoted=False))

    generated = _generate(_replace_tables(tree, relations, placeholder), dialect)
    if any(opener in generated for opener in ("{{", "{%", "{#")):
        raise _Refusal(
            [Problem("sql", "The rewritten SQL would contain Jinja markers. Remove braces from the query.")]
        )
    pattern = re.compile(rf"\b__asgard_{nonce}_(\d+)\b")
    seen = [int(match) for match in pattern.findall(generated)]
    if sorted(seen) != list(range(len(used))):  # each placeholder exactly once, or we do not trust it
        raise _Refusal(
            [Problem("sql", "The portal could not rewrite this SQL safely. Simplify the table references.")]
        )
    return pattern.sub(lambda m: used[int(m[1])].jinja, generated)


def _check_output(normalized: str, dialect: str, relations: list[TableReference]) -> None:
    """Defence in depth: the SQL we generated parses back into one allowed query that reads
    exactly the relations we put there, so no generator quirk can smuggle anything out."""
    tree = _parse_one(normalized, dialect)
    _check_structure(tree, normalized, dialect)
    read = [(table.db, table.name) for table in _real_tables(tree)]
    if read != [(relation.schema, relation.identifier) for relation in relations]:
        raise _Refusal(
            [Problem("sql", "The portal could not rewrite this SQL safely. Simplify the table references.")]
        )


def _generate(tree: exp.Expr, dialect: str) -> str:
    # Comments are dropped: they are not part of the query, and a comment is where text the
    # checks never looked at (hidden statements, Jinja) would otherwise travel into the file.
    return tree.sql(dialect=dialect, pretty=True, comments=False)


# --- positions and snippets ----------------------------------------------------------------


def _position(node: exp.Expr, sql: str) -> tuple[int, int] | None:
    """(line, column) where the node starts in `sql`: the smallest token offset sqlglot recorded.

    Some nodes (a `?` parameter, say) carry no offsets; then the nearest enclosing node that has
    one is used, which still points the user at the right expression.
    """
    current: exp.Expr | None = node
    while current is not None:
        starts = [n.meta["start"] for n in current.walk() if "start" in n.meta]
        if starts:
            return line_col(sql, min(starts))
        current = current.parent
    return None


def _snippet(node: exp.Expr, dialect: str, limit: int = 60) -> str:
    try:
        text = " ".join(node.sql(dialect=dialect, comments=False).split())
    except Exception:  # a message must not fail because a fragment cannot be printed
        text = node.key.upper()
    return text if len(text) <= limit else text[: limit - 3] + "..."
