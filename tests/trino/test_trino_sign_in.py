"""The portal signs in to Trino as its service user, over HTTPS with a password, and reads as
the person: Trino checks that the service user may impersonate them (rules.json), then the
person's own rights. Builds sign in the same way (dbt-trino's `ldap` method). The API's reads
through the service user: test_portal_trino.py, test_the_signed_in_user_is_who_trino_sees."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from trino_stack import signed_in

from portal.project.dbt_runner import DbtResult, run_dbt
from portal.settings import Settings
from portal.warehouse import AccessDenied, Relation, WarehouseUnavailable, open_warehouse

pytestmark = pytest.mark.trino


def customers(settings: Settings) -> Relation:
    return Relation(settings.trino_catalog, settings.gold_schema, "dp_customer_360")


def test_the_service_user_signs_in_and_the_person_is_the_session_user(
    built: DbtResult, stack: Settings
) -> None:
    warehouse = open_warehouse(signed_in(stack), user="reader-ann")
    assert warehouse.query("select current_user as who")["who"].tolist() == ["reader-ann"]
    assert warehouse.count(customers(stack)) > 0
    assert "as reader-ann, signed in as portal" in warehouse.status()
    with pytest.raises(AccessDenied, match=r"does not let denied-bob read this: Access Denied"):
        open_warehouse(signed_in(stack), user="denied-bob").preview(customers(stack), limit=5)


def test_a_wrong_password_is_refused_saying_what_to_check(stack: Settings, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    settings = dataclasses.replace(signed_in(stack), trino_password_file=str(wrong))
    with pytest.raises(
        WarehouseUnavailable, match=r"refused the portal's sign-in as portal: check PORTAL_TRINO_USER"
    ):
        open_warehouse(settings, user="reader-ann").query("select 1 as one")
    # and HTTPS without any password is no way in either: this port authenticates everyone
    anonymous = dataclasses.replace(signed_in(stack), trino_password_file="", trino_password="")
    with pytest.raises(WarehouseUnavailable):
        open_warehouse(anonymous, user="reader-ann").query("select 1 as one")


def test_a_service_user_without_an_impersonation_rule_reads_for_nobody(stack: Settings) -> None:
    other = signed_in(stack, service_user="other-service")
    assert open_warehouse(other).query("select current_user as who")["who"].tolist() == ["other-service"]
    with pytest.raises(AccessDenied, match=r"service user other-service act as reader-ann.*impersonation"):
        open_warehouse(other, user="reader-ann").query("select 1 as one")


def test_dbt_signs_in_as_the_service_user_too(stack: Settings, project_settings: Settings) -> None:
    # The HTTPS port answers nobody without a password: a result proves dbt signed in with it.
    shown = run_dbt(
        signed_in(project_settings), ["show", "--inline", "select current_user as who", "--output", "json"]
    )
    assert shown.ok, shown.tail(30)
    assert '"who": "portal"' in shown.log, shown.tail(30)
