"""The audit trail of human actions: who, when, old and new values, why; append-only; PostgreSQL-only."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory

from provenance.audit import AuditMiddleware, audit_reason, audit_trail
from provenance.auth import PartnerPrincipal
from provenance.models import Organization, OrganizationAudit, PartnerApiKey, UserAudit, UserGroupAudit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _audit_middleware(settings):
    """The service's middleware (pghistory's, plus API-key actors and usernames) wherever PostgreSQL audits."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "pghistory.middleware.HistoryMiddleware"]
    if connection.vendor == "postgresql":
        settings.MIDDLEWARE.append("provenance.audit.AuditMiddleware")


postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the audit triggers are PostgreSQL's")


def change_url(org):
    return f"/admin/provenance/organization/{org.pk}/change/"


def organization_form(org, **changes):
    prefix = org.company_prefixes.get()
    data = {
        "name": org.name,
        "gln": org.gln,
        "kind": org.kind,
        "licence_number": org.licence_number,
        "licence_state": org.licence_state,
        "licence_expires": "",
        "licence_status": org.licence_status,
        "authorized_trading_partner": "on",
        "company_prefixes-TOTAL_FORMS": "1",
        "company_prefixes-INITIAL_FORMS": "1",
        "company_prefixes-MIN_NUM_FORMS": "0",
        "company_prefixes-MAX_NUM_FORMS": "1000",
        "company_prefixes-0-id": str(prefix.pk),
        "company_prefixes-0-prefix": prefix.prefix,
        "company_prefixes-0-organization": str(org.pk),
    }
    data.update(changes)
    return data


def rows(response):
    assert response["Content-Type"] == "text/csv"
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_an_admin_change_requires_a_reason(admin_client, alice):
    org = alice.organization
    page = admin_client.get(change_url(org))
    assert b"Reason for this change" in page.content
    assert b"Audit trail (CSV)" in page.content
    refused = admin_client.post(change_url(org), organization_form(org, name="Alice Renamed"))
    assert refused.status_code == 200
    assert b"This field is required" in refused.content
    org.refresh_from_db()
    assert org.name == "Alice Wholesale"


def test_an_admin_change_records_who_when_old_and_new_values_and_why(admin_client, admin_user, alice):
    org = alice.organization
    response = admin_client.post(
        change_url(org), organization_form(org, name="Alice Renamed", audit_reason="Merger, ticket QA-17")
    )
    assert response.status_code == 302, response.content
    org.refresh_from_db()
    assert org.name == "Alice Renamed"  # the change itself works on every database

    records = list(audit_trail(model=Organization, object_ids=[org.pk]))
    if connection.vendor != "postgresql":
        assert records == []  # SQLite keeps no audit trail (docs/audit.md)
        return
    created, changed = records
    assert created.action == "insert"
    assert changed.action == "update"
    assert changed.changes == {"name": ("Alice Wholesale", "Alice Renamed")}
    assert changed.context["user"] == admin_user.pk
    assert changed.context["username"] == admin_user.username
    assert changed.reason == "Merger, ticket QA-17"
    assert changed.context["url"] == change_url(org)
    assert changed.when >= created.when  # NOW(): the start of the transaction (one per test here)

    exported = rows(admin_client.get(f"/admin/provenance/organization/{org.pk}/audit-trail.csv"))
    update = next(r for r in exported if r["action"] == "update")
    assert (update["field"], update["old value"], update["new value"]) == ("name", "Alice Wholesale", "Alice Renamed")
    assert (update["username"], update["reason"]) == (admin_user.username, "Merger, ticket QA-17")
    assert update["database role"] == connection.settings_dict["USER"]


@postgres_only
def test_bulk_updates_and_raw_sql_are_recorded_too(alice):
    org = alice.organization
    with connection.cursor() as cursor:
        cursor.execute("UPDATE provenance_organization SET licence_state = 'NJ' WHERE id = %s", [org.pk])
    # (pghistory's context is transaction-local: set after the raw statement, it cannot leak into it)
    with audit_reason("licence data load"):
        Organization.objects.filter(pk=org.pk).update(licence_number="L-1")
    *_, raw, bulk = audit_trail(model=Organization, object_ids=[org.pk])
    assert (bulk.changes, bulk.reason) == ({"licence_number": ("", "L-1")}, "licence data load")
    assert raw.changes == {"licence_state": ("", "NJ")}
    assert raw.context == {}  # no application context, yet the database says which role did it
    assert raw.db_user == connection.settings_dict["USER"]


@postgres_only
def test_an_api_key_is_recorded_as_the_actor_of_a_partner_request(alice):
    org = alice.organization
    api_key = PartnerApiKey.objects.get(organization=org)

    def view(request):
        request.user = PartnerPrincipal(organization=org, api_key=api_key)  # what DRF does on authentication
        Organization.objects.filter(pk=org.pk).update(licence_number="FROM-API")
        return HttpResponse()

    AuditMiddleware(view)(RequestFactory().post("/api/example"))
    context = OrganizationAudit.objects.latest("pgh_id").pgh_context
    assert context["api_key"] == api_key.prefix
    assert context["organization"] == org.gln
    assert context["user"] is None
    assert context["url"] == "/api/example"


@postgres_only
def test_group_membership_and_password_changes_are_recorded_without_the_password_hash(admin_client):
    user = User.objects.create_user("qa.lead", password="a-long-test-password")
    group = Group.objects.create(name="QA")
    user.groups.add(group)
    user.set_password("another-long-password")
    user.save()
    user.groups.remove(group)
    assert [e.pgh_label for e in UserGroupAudit.objects.order_by("pgh_id")] == ["add", "remove"]
    assert [e.pgh_label for e in UserAudit.objects.filter(pgh_obj_id=user.pk).order_by("pgh_id")] == [
        "insert",
        "password_change",
    ]
    assert "password" not in {f.name for f in UserAudit._meta.fields}

    exported = rows(admin_client.get(f"/admin/auth/user/{user.pk}/audit-trail.csv"))
    assert [r["action"] for r in exported if r["field"] == "group_id"] == ["add", "remove"]
    assert "password_change" in {r["action"] for r in exported}


@postgres_only
def test_a_deletion_in_the_admin_keeps_the_trail_of_the_deleted_object(admin_client):
    group = Group.objects.create(name="Temporary")
    response = admin_client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    *_, deleted = audit_trail(model=Group, object_ids=[group.pk])
    assert deleted.action == "delete"
    assert deleted.changes["name"] == ("Temporary", None)
    assert deleted.context["admin_action"] == "delete"


def test_the_audit_trail_is_append_only(alice):
    org = alice.organization
    if not OrganizationAudit.objects.exists():  # SQLite records nothing; an event inserted by hand will do
        OrganizationAudit.objects.create(
            pgh_obj=org, pgh_label="insert", **{f.attname: getattr(org, f.attname) for f in Organization._meta.fields}
        )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OrganizationAudit.objects.update(name="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OrganizationAudit.objects.all().delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # else TRUNCATE stops at deferred FK checks first
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute("TRUNCATE provenance_organizationaudit")
    assert OrganizationAudit.objects.exists()


def test_the_admin_shows_the_trail_of_an_object_and_exports_the_selected_ones(admin_client, alice, bob):
    org = alice.organization
    admin_client.post(change_url(org), organization_form(org, licence_number="NJ-42", audit_reason="renewal"))
    page = admin_client.get(change_url(org))
    trail_link = f"/admin/provenance/organizationaudit/?obj=provenance.Organization%3A{org.pk}"
    assert trail_link.encode() in page.content
    trail = admin_client.get(trail_link)
    assert trail.status_code == 200
    if connection.vendor == "postgresql":
        assert b"renewal" in trail.content
        assert (
            admin_client.get(f"/admin/pghistory/events/?method=tracks&obj=provenance.Organization:{org.pk}").status_code
            == 200
        )

    exported = rows(
        admin_client.post(
            "/admin/provenance/organization/",
            {"action": "export_audit_trail", "_selected_action": [str(org.pk), str(bob.organization.pk)]},
        )
    )
    if connection.vendor == "postgresql":
        assert {r["object"] for r in exported} == {str(org.pk), str(bob.organization.pk)}
        assert any(r["field"] == "licence_number" and r["new value"] == "NJ-42" for r in exported)
    else:
        assert exported == []


def test_the_audit_middleware_stays_out_of_the_way_where_there_is_no_audit_trail(admin_client, alice):
    # On SQLite pghistory's statement prefix would break every write; the middleware must not install it.
    assert AuditMiddleware(lambda request: HttpResponse("ok"))(RequestFactory().post("/x")).status_code == 200
    response = admin_client.post("/admin/auth/group/add/", {"name": "Reviewers", "audit_reason": "new QA team"})
    assert response.status_code == 302
    assert Group.objects.filter(name="Reviewers").exists()
