"""The service around the API: health, OpenAPI, partner creation, the admin."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from provenance.models import CustodyEvent, Organization, PartnerApiKey
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


def test_the_openapi_schema_covers_every_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for expected in (
        "/epcis/capture",
        "/epcis/capture/{capture_id}",
        "/epcis/events",
        "/epcis/events/{event_id}",
        "/healthz",
    ):
        assert expected in paths


def test_the_api_docs_page_renders(client):
    assert client.get("/api/docs/").status_code == 200


def test_create_partner_prints_a_working_key_on_its_last_line(client):
    out = StringIO()
    call_command("create_partner", "--name", "Acme", "--gln", "0614141000005", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert Organization.objects.get(gln="0614141000005").name == "Acme"
    response = client.get("/epcis/events", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200


def test_create_partner_refuses_a_gln_with_a_bad_check_digit():
    with pytest.raises(CommandError, match="check digit"):
        call_command("create_partner", "--name", "Acme", "--gln", "0614141000006", stdout=StringIO())


def test_create_partner_makes_operators(client):
    out = StringIO()
    call_command("create_partner", "--name", "Ops", "--gln", "0614141000005", "--operator", stdout=out)
    assert Organization.objects.get().is_operator
    assert PartnerApiKey.objects.count() == 1


@pytest.fixture
def admin_client_with_event(admin_client, alice):
    doc = f.document(f.commissioning("0700001000008", [f.sgtin_urn("0700001", "ADM1")]))
    alice.client.post("/epcis/capture", data=json.dumps(doc), content_type="application/json")
    return admin_client, CustodyEvent.objects.get()


def test_events_are_viewable_in_the_admin_but_not_changeable_even_by_a_superuser(admin_client_with_event):
    admin_client, event = admin_client_with_event
    assert admin_client.get("/admin/provenance/custodyevent/").status_code == 200
    page = admin_client.get(f"/admin/provenance/custodyevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = admin_client.post(f"/admin/provenance/custodyevent/{event.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert CustodyEvent.objects.filter(pk=event.pk).exists()


def test_the_database_refuses_to_change_or_delete_a_ledger_row(alice):
    from django.db import DatabaseError, transaction

    doc = f.document(f.commissioning("0700001000008", [f.sgtin_urn("0700001", "DB1")]))
    alice.client.post("/epcis/capture", data=json.dumps(doc), content_type="application/json")
    with pytest.raises(DatabaseError), transaction.atomic():
        CustodyEvent.objects.update(biz_step="shipping")
    with pytest.raises(DatabaseError), transaction.atomic():
        CustodyEvent.objects.all().delete()
    assert CustodyEvent.objects.get().biz_step == "commissioning"


def test_the_admin_lists_partners_and_can_revoke_keys(admin_client, alice):
    assert admin_client.get("/admin/provenance/organization/").status_code == 200
    key = alice.organization.api_keys.get()
    admin_client.post("/admin/provenance/partnerapikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked


def test_the_openapi_schema_is_valid_and_free_of_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 1000


def test_the_gln_of_an_organization_cannot_change(alice):
    from django.core.exceptions import ValidationError

    alice.organization.gln = "0700002000007"
    with pytest.raises(ValidationError):
        alice.organization.save()
