"""Every setting of the portal in one declarative table, read from the environment.

The table is the single source of truth: `Settings.from_env()` reads it, the README's
settings table is generated from it (`python -m portal settings --markdown`), and a test
checks the README agrees. Relative paths are resolved against the repository root so the
portal behaves the same whatever directory it is started from.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import certifi

from portal.errors import Unavailable

ROOT = Path(__file__).resolve().parent.parent


class SettingError(Unavailable):
    """A setting has a value the portal cannot use; the message names the variable and the fix."""

    headline = "A setting is wrong."


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (ROOT / path)


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _whole(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number, 0 or more")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be a positive number")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be a number, 0 or more")
    return number


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError("must be a number above 0 and at most 1 (e.g. 0.1 for 10 percentage points)")
    return number


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _text(value: str) -> str:
    return value


def _type_list(value: str) -> tuple[str, ...]:
    types = tuple(t.strip() for t in value.split(",") if t.strip())
    bad = [t for t in types if not re.fullmatch(r"[A-Z][A-Z0-9_]{1,39}", t)]
    if bad:
        raise ValueError(f"{', '.join(bad)} must be UPPER_SNAKE_CASE names of 2 to 40 characters")
    return types


ROLE_NAMES = ("viewer", "creator", "reviewer", "admin")  # least to most; the catalog's token roles agree


def _role_map(value: str) -> tuple[tuple[str, str], ...]:
    """`group=role,...` in order; `*` stands for any signed-in user."""
    pairs = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        group, separator, role = (text.strip() for text in item.partition("="))
        if not separator or not group or role not in ROLE_NAMES:
            raise ValueError(
                f"{item!r} must be GROUP=ROLE with ROLE one of {', '.join(ROLE_NAMES)} "
                "(e.g. `analytics-admins=admin,team-*=creator,*=viewer`)"
            )
        pairs.append((group, role))
    return tuple(pairs)


def _networks(value: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (`10.0.0.5`, `10.0.0.0/24`, `::1`)."""
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return tuple(found)


def _header(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", value):
        raise ValueError("must be an HTTP header name: letters, digits and -")
    return value


REVIEWER_KINDS = ("admin", "reviewer", "upstream-owners")


def _reviewers(value: str) -> tuple[str, ...]:
    """Who may review: REVIEWER_KINDS and `group:NAME` entries, comma-separated."""
    found = tuple(item.strip() for item in value.split(",") if item.strip())
    bad = [
        item
        for item in found
        if item not in REVIEWER_KINDS and not re.fullmatch(r"group:[^\s,]{1,200}", item)
    ]
    if bad or not found:
        raise ValueError(
            f"{', '.join(bad) or 'nothing'} is not a reviewer: use {', '.join(REVIEWER_KINDS)} or group:NAME"
        )
    return found


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


@dataclass(frozen=True)
class Setting:
    field: str
    default: str
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return "PORTAL_" + self.field.upper()


# The table. Order is the order of the README's settings table.
TABLE: tuple[Setting, ...] = (
    Setting(
        "dbt_project_dir",
        "var/project",
        _path,
        "The dbt project the portal serves (holds dbt_project.yml): a git repository of its own, where every "
        "product change is a commit by the person who asked (made on first use if the directory is not one). "
        "The embedded demo copies the repository's `dbt/` there on first run.",
    ),
    Setting(
        "git_remote",
        "",
        _text,
        "Where the project repository's main goes after every published change: empty for nowhere, a path "
        "to a bare repository, or an ssh/https URL (credentials from the environment: ssh agent, credential "
        "helper, GIT_ASKPASS). A remote that moved on is merged in first; a push that fails loses nothing.",
    ),
    Setting(
        "review",
        "auto",
        _choice("auto", "off", "required"),
        "Whether a product change waits for a reviewer once its build and tests pass: `required` holds it "
        "`in review` (its data on its Nessie branch, or in the audit schema on DuckDB) until someone of "
        "PORTAL_REVIEWERS approves it; `off` publishes at once. `auto` is `off` on the embedded default "
        "(DuckDB, local sign-in) and `required` otherwise.",
    ),
    Setting(
        "reviewers",
        "admin,reviewer,upstream-owners",
        _reviewers,
        "Who may approve or reject others' proposals, comma-separated: `admin` (the admin role), `reviewer` "
        "(the reviewer role), `upstream-owners` (members of the team owning a product the proposal reads), "
        "`group:NAME` (members of a group). An author never decides on their own proposal.",
    ),
    Setting(
        "review_expiry_days",
        "14",
        _positive_float,
        "Days a proposal may wait in review; after that it is closed as expired and its branch removed.",
    ),
    Setting(
        "dbt_target_dir",
        "",
        _text,
        "Where the dbt artifacts (manifest.json, run_results.json, catalog.json) are read; "
        "empty means `<dbt_project_dir>/target`.",
    ),
    Setting(
        "dbt_profiles_dir",
        "",
        _text,
        "Directory holding profiles.yml; empty means the dbt project directory.",
    ),
    Setting("dbt_target", "local", _text, "The dbt target used for builds (`local` = DuckDB, `trino`)."),
    Setting(
        "data_products_path",
        "models/data_products",
        _text,
        "Models under this path (or with `meta.data_product_type`) are data products.",
    ),
    Setting("warehouse", "duckdb", _choice("duckdb", "trino"), "Which warehouse engine previews run on."),
    Setting("duckdb_path", "var/warehouse.duckdb", _path, "The DuckDB warehouse file (embedded default)."),
    Setting(
        "duckdb_read_copy_max_mb",
        "2048",
        _whole,
        "While a build writes the DuckDB file, previews read a copy of it as it was before the build; "
        "a file larger than this many MB is not copied and previews wait for the build (0: never copy).",
    ),
    Setting("trino_host", "127.0.0.1", _text, "Trino coordinator host."),
    Setting("trino_port", "8080", _positive_int, "Trino coordinator port."),
    Setting("trino_user", "portal", _text, "Trino user when no portal identity is known."),
    Setting("trino_catalog", "nessie", _text, "Trino catalog holding the Iceberg tables."),
    Setting("trino_http_scheme", "http", _choice("http", "https"), "Scheme of the Trino coordinator."),
    Setting(
        "trino_password",
        "",
        _text,
        "The password of `PORTAL_TRINO_USER`, the portal's service user (or give PORTAL_TRINO_PASSWORD_FILE). "
        "With it the portal signs in to Trino over HTTPS and runs each person's previews and queries with them "
        "as the session user (impersonation: Trino's rules must let the service user act as them); builds run "
        "as the service user.",
    ),
    Setting("trino_password_file", "", _text, "A file holding the Trino service user's password."),
    Setting(
        "trino_ca_file",
        "",
        _text,
        "A PEM file of the certificate authorities that Trino's HTTPS certificate is checked against "
        "(default: the system's).",
    ),
    Setting(
        "trino_catalog_properties",
        "var/stack/etc/catalog/nessie.properties",
        _path,
        "The Trino catalog file of `PORTAL_TRINO_CATALOG` (Iceberg on Nessie). Creating a product on Trino "
        "reads Nessie's URI from it and copies it into a catalog on the product's Nessie branch.",
    ),
    Setting(
        "trino_access_rules_file",
        "",
        _text,
        "Where the portal writes Trino's file-based access rules (the coordinator's `security.config-file`, "
        "reloaded by its `security.refresh-period`): the base rules plus, for each restricted product "
        "(`meta.restricted: true`), SELECT for the portal's user, its owning team (as a Trino group) and "
        "the consumers whose access request is approved and not expired; nobody else. Empty: write none.",
    ),
    Setting(
        "trino_access_rules_base",
        "deploy/trino/local/rules.json",
        _path,
        "The rules the generated file starts from (catalogs, impersonation, ...); its `tables` rules, if "
        "any, apply after the restricted products' own.",
    ),
    Setting(
        "lock_wait_s",
        "30",
        _non_negative_float,
        "How long a reviewer's approval or rejection and a consumer's registration or removal wait for a "
        "build that holds the project before answering busy (503, try again); 0: answer busy at once.",
    ),
    Setting(
        "access_max_days",
        "90",
        _positive_int,
        "The longest access a consumer may ask for, in days; an approved request ends after its days.",
    ),
    Setting(
        "catalog_db_url",
        "sqlite:///var/catalog.db",
        _text,
        "SQLAlchemy URL of the catalog database (relative SQLite paths are under the repo root).",
    ),
    Setting("local_user", "local-user", _text, "The single local user of the embedded default."),
    Setting("preview_default_rows", "100", _positive_int, "Rows a preview shows unless asked for more."),
    Setting(
        "preview_max_rows",
        "10000",
        _positive_int,
        "The most rows a preview or API query may return, and an export (CSV, Parquet) may hold.",
    ),
    Setting("query_timeout_s", "15", _positive_float, "Seconds before a preview query is interrupted."),
    Setting("demo_scale", "1", _positive_float, "Size of the demo silver data (1 = about 100k orders)."),
    Setting("demo_seed", "42", _positive_int, "Seed of the demo data generator (same seed, same rows)."),
    Setting(
        "silver_schema", "silver", _text, "Schema of the raw silver tables (the dbt var `silver_schema`)."
    ),
    Setting(
        "gold_schema", "gold", _text, "Schema of the published data products (the dbt var `gold_schema`)."
    ),
    Setting(
        "product_types",
        "",
        _type_list,
        "Data product types offered besides the built-in four, comma-separated (e.g. `RISK,MARKETING_MIX`).",
    ),
    Setting(
        "freshness_column",
        "data_product_updated_at",
        _text,
        "The timestamp column whose newest value says how fresh a data product is.",
    ),
    Setting(
        "freshness_stale_factor",
        "2",
        _positive_float,
        "A product is late once its data is older than its update frequency, and stale once older than "
        "this many times it.",
    ),
    Setting(
        "drift_null_rate_delta",
        "0.1",
        _fraction,
        "Distribution drift: a column's null rate moving by at least this much between builds (0.1 = 10 points).",
    ),
    Setting(
        "drift_distinct_change",
        "0.5",
        _positive_float,
        "Distribution drift: a column's distinct count changing by at least this fraction (0.5 = 50 %).",
    ),
    Setting(
        "drift_mean_shift",
        "0.5",
        _positive_float,
        "Distribution drift: a numeric column's mean moving by at least this many previous standard deviations.",
    ),
    Setting(
        "drift_psi",
        "0.2",
        _positive_float,
        "Distribution drift: a population stability index at least this high on a low-cardinality column.",
    ),
    Setting(
        "profile_max_categories",
        "20",
        _positive_int,
        "Columns with at most this many distinct values get value counts (and so a population stability index).",
    ),
    Setting(
        "profile_approximate_distinct",
        "false",
        _bool,
        "Count distinct values approximately (HyperLogLog, a few per cent off, several times faster on big "
        "tables) instead of exactly.",
    ),
    Setting(
        "refresh_timeout_s",
        "3600",
        _positive_float,
        "Seconds one product's refresh build may run before it is stopped.",
    ),
    Setting(
        "build_timeout_s",
        "1800",
        _positive_float,
        "Seconds a product's creation or edit build (its audit `dbt build` and tests) may run before it "
        "is stopped; the product is then not published.",
    ),
    Setting("api_host", "127.0.0.1", _text, "Address `python -m portal api` (`make api`) listens on."),
    Setting("api_port", "8000", _positive_int, "Port of the REST API."),
    Setting(
        "api_anonymous",
        "auto",
        _choice("auto", "off", "viewer", "creator"),
        "Role of API calls without a token, as the local user: `auto` is `creator` on the embedded "
        "DuckDB default and `off` on Trino. Only honoured for direct calls from 127.0.0.1 to an API "
        "bound to a loopback address.",
    ),
    Setting(
        "api_max_body_bytes", "1048576", _positive_int, "The largest request body the API accepts (bytes)."
    ),
    Setting(
        "auth",
        "local",
        _choice("local", "oidc", "proxy"),
        "How people sign in to the UI: `local` is the single local user of the embedded default (loopback "
        "only), `oidc` signs in with OpenID Connect, `proxy` trusts the user headers of a sign-in proxy "
        "(oauth2-proxy). The API takes the same identities besides its own tokens.",
    ),
    Setting(
        "oidc_issuer",
        "",
        _text,
        "The OpenID Connect issuer (e.g. https://sso.example.com/realms/asgard): its discovery document "
        "and signing keys are read from there.",
    ),
    Setting("oidc_client_id", "", _text, "The portal's OIDC client id."),
    Setting(
        "oidc_client_secret",
        "",
        _text,
        "The portal's OIDC client secret (or give PORTAL_OIDC_CLIENT_SECRET_FILE, a file outside git).",
    ),
    Setting("oidc_client_secret_file", "", _text, "A file holding the OIDC client secret."),
    Setting(
        "oidc_redirect_uri",
        "",
        _text,
        "The UI's public address followed by /oauth2callback (e.g. https://portal.example.com/oauth2callback).",
    ),
    Setting(
        "oidc_audience",
        "",
        _text,
        "The audience an access token must name to be accepted by the API; empty means the client id.",
    ),
    Setting("oidc_user_claim", "email", _text, "The token claim that names the user."),
    Setting("oidc_groups_claim", "groups", _text, "The token claim that lists the user's groups (teams)."),
    Setting(
        "auth_proxy_addresses",
        "",
        _networks,
        "Addresses of the sign-in proxy (comma-separated IPs or networks); its user headers are honoured "
        "from these addresses only, never from anyone else.",
    ),
    Setting("auth_proxy_user_header", "X-Auth-Request-Email", _header, "The proxy's header naming the user."),
    Setting(
        "auth_proxy_groups_header",
        "X-Auth-Request-Groups",
        _header,
        "The proxy's header listing the user's groups, comma-separated.",
    ),
    Setting(
        "role_map",
        "*=viewer",
        _role_map,
        "Roles from groups, `GROUP=ROLE` comma-separated (a trailing `*` matches any group, a lone `*` any "
        "user); a user gets the highest role of every entry that matches.",
    ),
    # OpenLineage: every build's run events, sent to a lineage backend (portal/integrations/openlineage.py)
    Setting(
        "openlineage_transport",
        "auto",
        _choice("auto", "off", "http", "file", "console"),
        "Where builds send their OpenLineage run events: `off`; `http` (Marquez, DataHub, OpenMetadata: "
        "PORTAL_OPENLINEAGE_URL); `file` (one JSON event a line, PORTAL_OPENLINEAGE_FILE); `console` (the "
        "portal's log). `auto` is off unless the OpenLineage client's own variables configure a transport "
        "(OPENLINEAGE_URL and OPENLINEAGE_API_KEY, OPENLINEAGE_CONFIG, OPENLINEAGE__TRANSPORT__*); "
        "OPENLINEAGE_DISABLED=true turns it off.",
    ),
    Setting(
        "openlineage_url",
        "",
        _text,
        "The lineage backend's base URL for the `http` transport (e.g. http://marquez:5000); empty: "
        "OPENLINEAGE_URL. Events are posted to OPENLINEAGE_ENDPOINT under it (default api/v1/lineage).",
    ),
    Setting(
        "openlineage_api_key",
        "",
        _text,
        "The API key sent as a bearer token to the lineage backend; empty: OPENLINEAGE_API_KEY (or none).",
    ),
    Setting(
        "openlineage_file",
        "var/openlineage/events.jsonl",
        _path,
        "The file the `file` transport appends its events to, one JSON event a line.",
    ),
    Setting(
        "openlineage_namespace",
        "asgard-portal",
        _text,
        "The OpenLineage job namespace of the portal's builds; a job is named `<dbt project>.<model>`.",
    ),
    Setting(
        "openlineage_timeout_s",
        "5",
        _positive_float,
        "How long one event may take to send before it is given up with a warning in the run's log; "
        "events are sent in the background, so a slow or absent backend never slows a build.",
    ),
)


@dataclass(frozen=True)
class Settings:
    dbt_project_dir: Path
    git_remote: str
    review: str
    reviewers: tuple[str, ...]
    review_expiry_days: float
    dbt_target_dir: str
    dbt_profiles_dir: str
    dbt_target: str
    data_products_path: str
    warehouse: str
    duckdb_path: Path
    duckdb_read_copy_max_mb: int
    trino_host: str
    trino_port: int
    trino_user: str
    trino_catalog: str
    trino_http_scheme: str
    trino_password: str = field(repr=False)
    trino_password_file: str
    trino_ca_file: str
    trino_catalog_properties: Path
    trino_access_rules_file: str
    trino_access_rules_base: Path
    access_max_days: int
    catalog_db_url: str
    local_user: str
    preview_default_rows: int
    preview_max_rows: int
    query_timeout_s: float
    demo_scale: float
    demo_seed: int
    silver_schema: str
    gold_schema: str
    product_types: tuple[str, ...]
    freshness_column: str
    freshness_stale_factor: float
    drift_null_rate_delta: float
    drift_distinct_change: float
    drift_mean_shift: float
    drift_psi: float
    profile_max_categories: int
    profile_approximate_distinct: bool
    refresh_timeout_s: float
    build_timeout_s: float
    api_host: str
    api_port: int
    api_anonymous: str
    api_max_body_bytes: int
    auth: str
    oidc_issuer: str
    oidc_client_id: str
    oidc_client_secret: str
    oidc_client_secret_file: str
    oidc_redirect_uri: str
    oidc_audience: str
    oidc_user_claim: str
    oidc_groups_claim: str
    auth_proxy_addresses: tuple[str, ...]
    auth_proxy_user_header: str
    auth_proxy_groups_header: str
    role_map: tuple[tuple[str, str], ...]
    openlineage_transport: str
    openlineage_url: str
    openlineage_api_key: str = field(repr=False)
    openlineage_file: Path
    openlineage_namespace: str
    openlineage_timeout_s: float
    lock_wait_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from `environ` (default: the process environment).

        `overrides` take precedence and are already-typed values (used by tests and the CLI).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in TABLE:
            if setting.field in overrides:
                values[setting.field] = overrides[setting.field]
                continue
            raw = env.get(setting.env, setting.default)
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError as exc:
                raise SettingError(
                    f"{setting.env}={raw!r} is not valid: {exc}. Unset it to use the default {setting.default!r}."
                ) from exc
        return cls(**values)

    # Derived values: computed, never stored twice.
    @property
    def target_dir(self) -> Path:
        return _path(self.dbt_target_dir) if self.dbt_target_dir else self.dbt_project_dir / "target"

    @property
    def embedded(self) -> bool:
        """The embedded default's engine: one machine's DuckDB file, not a shared warehouse."""
        return self.warehouse == "duckdb"

    @property
    def review_required(self) -> bool:
        """Whether product changes wait for a reviewer (PORTAL_REVIEW; `auto`: on a shared portal,
        that is anything but the embedded DuckDB default with its one local user)."""
        if self.review == "auto":
            return not (self.embedded and self.auth == "local")
        return self.review == "required"

    @property
    def profiles_dir(self) -> Path:
        return _path(self.dbt_profiles_dir) if self.dbt_profiles_dir else self.dbt_project_dir

    @property
    def resolved_catalog_db_url(self) -> str:
        """SQLite URLs with a relative path are made absolute against the repo root."""
        prefix = "sqlite:///"
        url = self.catalog_db_url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(ROOT / url[len(prefix) :])
        return url

    def dbt_env(self) -> dict[str, str]:
        """The environment variables `dbt/profiles.yml` reads, so dbt and the portal agree."""
        password = self.trino_service_password()
        return {
            "PORTAL_DUCKDB_PATH": str(self.duckdb_path),
            "PORTAL_TRINO_HOST": self.trino_host,
            "PORTAL_TRINO_PORT": str(self.trino_port),
            "PORTAL_TRINO_USER": self.trino_user,
            "PORTAL_TRINO_CATALOG": self.trino_catalog,
            "PORTAL_TRINO_HTTP_SCHEME": self.trino_http_scheme,
            # What requests checks Trino's certificate against when no file is named.
            "PORTAL_TRINO_CA_FILE": self.trino_ca_file or certifi.where(),
            # requests takes this over the `cert` dbt passes (psf/requests#3829): name the same file.
            **({"REQUESTS_CA_BUNDLE": self.trino_ca_file} if self.trino_ca_file else {}),
            # dbt keeps DBT_ENV_SECRET_* variables out of its logs (and a profile cannot test them:
            # dbt hands them to Jinja wrapped), so the method comes in a variable of its own.
            "DBT_ENV_SECRET_TRINO_PASSWORD": password or "",
            "PORTAL_TRINO_DBT_METHOD": "ldap" if password else "none",
        }

    def trino_service_password(self) -> str | None:
        """The Trino service user's password, from the setting or its file; None when neither is set."""
        return secret(self.trino_password, self.trino_password_file, "trino_password_file")


def secret(value: str, file: str, file_field: str) -> str | None:
    """A secret given directly, or in a file outside git (its text, without the final newline);
    None when neither is set. SettingError, naming the setting, when the file cannot be read."""
    if value:
        return value
    if not file:
        return None
    path = Path(file).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingError(
            f"{env_of(file_field)} names {path}, which cannot be read ({exc.strerror})."
        ) from exc


def env_of(field: str) -> str:
    """The environment variable of the Settings field `field` (build_timeout_s: PORTAL_BUILD_TIMEOUT_S),
    for messages that tell people what to change; ValueError for a field that is no setting."""
    for setting in TABLE:
        if setting.field == field:
            return setting.env
    raise ValueError(f"{field!r} is not a setting (portal/settings.py TABLE).")


def settings_markdown() -> str:
    """The README's settings table, generated from TABLE."""
    lines = ["| environment variable | default | what it sets |", "|---|---|---|"]
    for setting in TABLE:
        default = f"`{setting.default}`" if setting.default else "(empty)"
        lines.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(lines)


assert {s.field for s in TABLE} == {f.name for f in fields(Settings)}, "TABLE and Settings disagree"
