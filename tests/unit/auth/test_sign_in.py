"""Sign-in rules in the core: roles from groups, teams as owners, the sign-in proxy's headers
honoured from its own addresses only, OIDC claims, and the UI's refusal to serve the network
without a sign-in."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from catalog_db import open_catalog
from portal.audit import add_event, product_history
from portal.auth.access import PermissionDenied, anonymous_principal, authorize, may
from portal.auth.identity import Identity, Principal
from portal.auth.oidc import SignInFailed, identity_from_claims, streamlit_auth_secrets
from portal.auth.proxy import ProxySignInFailed, proxy_identity
from portal.auth.roles import NoRole, role_for
from portal.auth.sign_in import ui_start_problem
from portal.creation.flow import owner_problems
from portal.creation.spec import ProductSpec
from portal.settings import SettingError, Settings

ROLE_MAP = "analytics-admins=admin,portal-creators=creator,team-*=viewer"
PROXY = {
    "PORTAL_AUTH": "proxy",
    "PORTAL_AUTH_PROXY_ADDRESSES": "10.0.0.5, 10.1.0.0/16",
    "PORTAL_ROLE_MAP": ROLE_MAP,
}
SAM = [("X-Auth-Request-Email", "sam@example.com"), ("X-Auth-Request-Groups", "team-sales,portal-creators")]


def product(owner: str | None, created_by: str = "someone") -> SimpleNamespace:
    return SimpleNamespace(name="dp_sales", created_by=created_by, owner=owner)


def test_roles_come_from_groups() -> None:
    mapping = Settings.from_env({"PORTAL_ROLE_MAP": ROLE_MAP}).role_map
    assert role_for(["team-sales", "portal-creators"], mapping) == "creator"
    assert role_for(["team-sales", "analytics-admins"], mapping) == "admin"  # the highest that matches
    assert role_for(["team-marketing"], mapping) == "viewer"  # team-* matches by prefix
    assert role_for(["contractors"], mapping) is None  # no entry matches: no role at all
    assert role_for([], Settings.from_env({}).role_map) == "viewer"  # the default: *=viewer
    with pytest.raises(SettingError, match="GROUP=ROLE"):
        Settings.from_env({"PORTAL_ROLE_MAP": "admins=superuser"})


def test_teams_own_products() -> None:
    sam = Principal("sam@example.com", kind="oidc", groups=("team-sales", "portal-creators"), role="creator")
    maria = Principal("maria@example.com", kind="oidc", groups=("team-marketing",), role="creator")
    ada = Principal("ada@example.com", kind="oidc", groups=("analytics-admins",), role="admin")
    owned = product("team-sales", created_by="maria@example.com")
    for action in ("edit", "run", "deprecate", "discard"):
        assert may(sam, action, owned)  # a member of the owning team, whoever created it
        assert may(ada, action, owned)
        assert not may(maria, action, owned)  # she created it, but it belongs to another team now
    with pytest.raises(
        PermissionDenied, match=r"only products of their teams \(team-marketing\).*team-sales"
    ):
        authorize(maria, "edit", owned)
    # a token's holder has no groups: the products they created or that name them are theirs
    carl = Principal("carl", kind="token", role="creator")
    assert may(carl, "edit", product("sales", created_by="carl")) and not may(carl, "edit", owned)


def test_reviewers_review_and_create_and_own_like_creators() -> None:
    mapping = Settings.from_env({"PORTAL_ROLE_MAP": "data-stewards=reviewer," + ROLE_MAP}).role_map
    assert role_for(["data-stewards", "portal-creators"], mapping) == "reviewer"  # above creator
    assert role_for(["data-stewards", "analytics-admins"], mapping) == "admin"
    rita = Principal("rita@example.com", kind="oidc", groups=("team-sales", "data-stewards"), role="reviewer")
    sam = Principal("sam@example.com", kind="oidc", groups=("team-sales",), role="creator")
    ada = Principal("ada@example.com", kind="oidc", groups=("analytics-admins",), role="admin")
    assert may(rita, "review") and may(ada, "review") and may(rita, "create")
    assert may(rita, "edit", product("team-sales")) and not may(rita, "edit", product("team-marketing"))
    with pytest.raises(
        PermissionDenied,
        match=r"sam@example.com has the creator role; to review others' "
        r"proposals you need the reviewer or admin role\. Roles come from your groups",
    ):
        authorize(sam, "review")
    with pytest.raises(
        PermissionDenied, match=r"you need the admin role\. Ask an admin for a token: .*--role admin"
    ):
        authorize(Principal("carl", kind="token", role="reviewer"), "manage_tokens")


def test_a_signed_in_creator_gives_products_to_their_own_teams() -> None:
    spec = ProductSpec(
        name="dp_sales",
        description="x",
        data_product_type="CUSTOM",
        owner="team-marketing",
        sql="select 1 as id",
        primary_key=("id",),
    )
    sam = Principal("sam@example.com", kind="oidc", groups=("team-sales", "portal-creators"), role="creator")
    (problem,) = owner_problems(sam, spec)
    assert (
        problem.field == "owner" and "`team-sales`" in problem.message and "team-marketing" in problem.message
    )
    ada = Principal("ada@example.com", kind="oidc", groups=("analytics-admins",), role="admin")
    assert owner_problems(ada, spec) == [] and owner_problems(Identity("local-user"), spec) == []


def test_the_proxy_is_believed_from_its_own_addresses_only() -> None:
    settings = Settings.from_env(PROXY)
    sam = proxy_identity(settings, client_host="10.0.0.5", headers=SAM)
    assert sam == Principal(
        "sam@example.com", kind="proxy", groups=("team-sales", "portal-creators"), role="creator"
    )
    assert proxy_identity(settings, client_host="10.1.200.3", headers=SAM) == sam  # a network
    for elsewhere in ("10.0.0.6", "127.0.0.1", None, "not-an-address"):
        assert proxy_identity(settings, client_host=elsewhere, headers=SAM) is None  # ignored
    assert (
        proxy_identity(Settings.from_env({}), client_host="10.0.0.5", headers=SAM) is None
    )  # not proxy mode
    with pytest.raises(
        ProxySignInFailed, match="sent no `X-Auth-Request-Email` header; it must send exactly one"
    ):
        proxy_identity(settings, client_host="10.0.0.5", headers=[("X-Auth-Request-Groups", "team-sales")])
    with pytest.raises(
        ProxySignInFailed, match="sent 2 `X-Auth-Request-Email` headers; it must send exactly one"
    ):
        proxy_identity(settings, client_host="10.0.0.5", headers=[*SAM, ("x-auth-request-email", "eve")])
    with pytest.raises(ProxySignInFailed, match="sent an empty `X-Auth-Request-Email` header"):
        proxy_identity(settings, client_host="10.0.0.5", headers=[("X-Auth-Request-Email", " ")])
    with pytest.raises(NoRole, match=r"none of their groups \(contractors\)"):
        proxy_identity(
            settings,
            client_host="10.0.0.5",
            headers=[("X-Auth-Request-Email", "eve@example.com"), ("X-Auth-Request-Groups", "contractors")],
        )


def test_sign_in_headers_from_anyone_else_lose_local_access() -> None:
    settings = Settings.from_env({**PROXY, "PORTAL_API_ANONYMOUS": "viewer"})
    headers = [("host", "127.0.0.1:8000"), *SAM]
    with pytest.raises(Exception, match="came through a proxy"):
        anonymous_principal(settings, bind_host="127.0.0.1", client_host="127.0.0.1", headers=headers)


def test_oidc_claims_become_the_identity() -> None:
    settings = Settings.from_env({"PORTAL_ROLE_MAP": ROLE_MAP})
    claims = {"email": "sam@example.com", "groups": ["/team-sales", "portal-creators", "bad name!"]}
    assert identity_from_claims(settings, claims) == Principal(
        "sam@example.com", kind="oidc", groups=("team-sales", "portal-creators"), role="creator"
    )
    with pytest.raises(SignInFailed, match="`email` claim"):
        identity_from_claims(settings, {"sub": "x"})
    with pytest.raises(NoRole):
        identity_from_claims(settings, {"email": "eve@example.com", "groups": ["contractors"]})


def test_the_ui_serves_the_network_only_with_a_sign_in(tmp_path: Path) -> None:
    local = Settings.from_env({})
    assert ui_start_problem(local, "127.0.0.1") is None and ui_start_problem(local, "localhost") is None
    refused = ui_start_problem(local, "0.0.0.0")
    assert refused and "PORTAL_AUTH=local signs nobody in" in refused and "PORTAL_AUTH=oidc" in refused
    oidc = Settings.from_env(
        {"PORTAL_AUTH": "oidc", "PORTAL_OIDC_ISSUER": "https://sso.example.com/realms/a"}
    )
    missing = ui_start_problem(oidc, "0.0.0.0")
    assert missing and "PORTAL_OIDC_CLIENT_ID" in missing and "PORTAL_OIDC_REDIRECT_URI" in missing
    assert ui_start_problem(Settings.from_env({"PORTAL_AUTH": "proxy"}), "0.0.0.0")
    assert ui_start_problem(Settings.from_env(PROXY), "0.0.0.0") is None

    secret = tmp_path / "client-secret"
    secret.write_text('s3cr"et\n')
    configured = Settings.from_env(
        {
            "PORTAL_AUTH": "oidc",
            "PORTAL_OIDC_ISSUER": "https://sso.example.com/realms/asgard/",
            "PORTAL_OIDC_CLIENT_ID": "asgard-portal",
            "PORTAL_OIDC_CLIENT_SECRET_FILE": str(secret),
            "PORTAL_OIDC_REDIRECT_URI": "https://portal.example.com/oauth2callback",
        }
    )
    assert ui_start_problem(configured, "0.0.0.0") is None
    auth = tomllib.loads(streamlit_auth_secrets(configured))["auth"]
    assert auth["client_secret"] == 's3cr"et' and auth["client_id"] == "asgard-portal"
    assert (
        auth["server_metadata_url"]
        == "https://sso.example.com/realms/asgard/.well-known/openid-configuration"
    )
    assert len(auth["cookie_secret"]) >= 32


def test_changes_record_the_teams_of_who_made_them(tmp_path: Path) -> None:
    sessions = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    sam = Principal("sam@example.com", kind="oidc", groups=("team-sales", "portal-creators"), role="creator")
    with sessions.begin() as session:
        add_event(session, "sync", "product.registered", "data_product", "dp_sales", {"origin": "portal"})
        add_event(
            session, sam, "product.edited", "data_product", "dp_sales", {"changes": {"description": {}}}
        )
    edited, registered = product_history(SimpleNamespace(sessions=sessions), "dp_sales")
    assert (edited.actor, edited.teams, edited.action) == (
        "sam@example.com",
        ("team-sales", "portal-creators"),
        "product.edited",
    )
    assert edited.detail == {"changes": {"description": {}}}  # the teams are not repeated in it
    assert (registered.actor, registered.teams) == ("sync", ())
