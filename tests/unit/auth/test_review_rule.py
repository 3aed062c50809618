"""Who may decide on a proposal (PORTAL_REVIEWERS), as `access.review_refusal` rules it."""

from __future__ import annotations

import pytest

from portal.auth.access import Principal, review_refusal
from portal.settings import SettingError, Settings

DEFAULT = Settings.from_env({}).reviewers
ANN = Principal("ann@example.com", kind="oidc", groups=("team-sales",), role="creator")


def who(user: str, role: str, *groups: str) -> Principal:
    return Principal(user, kind="oidc", groups=groups, role=role)


@pytest.mark.parametrize(
    ("identity", "reviewers", "allowed"),
    [
        (who("ada@example.com", "admin"), DEFAULT, True),
        (who("rita@example.com", "reviewer"), DEFAULT, True),
        (who("ada@example.com", "admin"), ("reviewer",), True),  # an admin is a reviewer too
        (who("ada@example.com", "admin"), ("group:data-stewards",), False),
        (who("olga@example.com", "creator", "team-finance"), DEFAULT, True),  # owns what it reads
        (who("vic@example.com", "viewer", "team-finance"), DEFAULT, False),  # a viewer never decides
        (who("carl@example.com", "creator", "team-other"), DEFAULT, False),
        (who("rita@example.com", "reviewer"), ("admin",), False),
        (who("sten@example.com", "viewer", "data-stewards"), ("group:data-stewards",), True),
    ],
)
def test_who_may_decide(identity: Principal, reviewers: tuple[str, ...], allowed: bool) -> None:
    refusal = review_refusal(identity, author=ANN.user, upstream_owners=["team-finance"], reviewers=reviewers)
    assert (refusal is None) is allowed, refusal
    if not allowed:
        assert "PORTAL_REVIEWERS" in refusal  # it says who may instead


def test_an_author_never_decides_on_their_own_proposal() -> None:
    admin_author = who("ann@example.com", "admin")
    refusal = review_refusal(admin_author, author="ann@example.com", upstream_owners=[], reviewers=DEFAULT)
    assert refusal is not None and "authors cannot approve or reject their own" in refusal


def test_the_reviewers_setting_names_what_it_accepts() -> None:
    assert Settings.from_env({"PORTAL_REVIEWERS": "admin, group:stewards"}).reviewers == (
        "admin",
        "group:stewards",
    )
    with pytest.raises(SettingError, match="owners is not a reviewer"):
        Settings.from_env({"PORTAL_REVIEWERS": "admin,owners"})
    with pytest.raises(SettingError, match="nothing is not a reviewer"):
        Settings.from_env({"PORTAL_REVIEWERS": " , "})
