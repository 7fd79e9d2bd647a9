"""Every endpoint x own partner, other partner, operator, anonymous."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from provenance import services
from provenance.models import CustodyEvent
from tests import factories as f

pytestmark = pytest.mark.django_db

ALICE_GLN = "0700001000008"
BOB_GLN = "0700002000007"


def post_doc(client, doc):
    return client.post("/epcis/capture", data=json.dumps(doc), content_type="application/json")


def alice_event(serial="M1"):
    return f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", serial)])


def visible_ids(client):
    response = client.get("/epcis/events")
    assert response.status_code == 200
    return {e["eventID"] for e in response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]}


@pytest.mark.parametrize(("who", "status"), [("alice", 202), ("bob", 403), ("operator", 202), ("anonymous", 401)])
def test_capture_is_allowed_only_to_a_party_of_the_event_or_an_operator(request, who, status):
    client = request.getfixturevalue(who)
    client = getattr(client, "client", client)
    response = post_doc(client, f.document(alice_event()))
    assert response.status_code == status, response.content
    assert response["Content-Type"] == ("application/json" if status == 202 else "application/problem+json")
    assert CustodyEvent.objects.count() == (1 if status == 202 else 0)


@pytest.mark.parametrize(("who", "status"), [("alice", 201), ("bob", 403), ("operator", 201), ("anonymous", 401)])
def test_single_event_capture_follows_the_same_rules(request, who, status):
    client = request.getfixturevalue(who)
    client = getattr(client, "client", client)
    response = client.post("/epcis/events", data=json.dumps(alice_event()), content_type="application/json")
    assert response.status_code == status, response.content


@pytest.mark.parametrize(("who", "status"), [("alice", 200), ("bob", 404), ("operator", 200), ("anonymous", 401)])
def test_a_capture_job_is_readable_by_its_submitter_and_operators(request, alice, who, status):
    location = post_doc(alice.client, f.document(alice_event()))["Location"]
    client = request.getfixturevalue(who)
    client = getattr(client, "client", client)
    assert client.get(location).status_code == status


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 404), ("operator", 200), ("anonymous", 401), ("staff_client", 200)]
)
def test_an_event_is_readable_by_its_parties_operators_and_staff(request, alice, who, status):
    post_doc(alice.client, f.document(alice_event()))
    event_id = CustodyEvent.objects.get().event_id
    client = request.getfixturevalue(who)
    client = getattr(client, "client", client)
    assert client.get(f"/epcis/events/{quote(event_id, safe='')}").status_code == status


def test_a_query_shows_a_partner_only_events_about_objects_it_has_had_custody_of(alice, bob, operator):
    a1, a2 = f.sgtin_urn("0700001", "V1"), f.sgtin_urn("0700001", "V2")
    post_doc(alice.client, f.document(f.commissioning(ALICE_GLN, [a1])))
    post_doc(alice.client, f.document(f.commissioning(ALICE_GLN, [a2], lot="L2")))
    assert visible_ids(bob.client) == set()
    post_doc(alice.client, f.document(f.shipping(ALICE_GLN, BOB_GLN, [a1])))
    post_doc(bob.client, f.document(f.receiving(ALICE_GLN, BOB_GLN, [a1])))
    ids = {e.body.get("bizStep"): e.event_id for e in CustodyEvent.objects.all() if e.body["epcList"] == [a1]}
    bob_sees = visible_ids(bob.client)
    assert set(ids.values()) <= bob_sees  # commissioning of the pack he received, the shipment, his receipt
    other = CustodyEvent.objects.get(body__epcList=[a2]).event_id
    assert other not in bob_sees
    assert other in visible_ids(alice.client)
    assert len(visible_ids(operator.client)) == 4


def test_anonymous_queries_are_refused(anonymous):
    assert anonymous.get("/epcis/events").status_code == 401


def test_a_revoked_key_is_refused(alice):
    services.api_key_revoke(api_key=alice.organization.api_keys.get())
    response = alice.client.get("/epcis/events")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_expired_key_is_refused(alice):
    key = alice.organization.api_keys.get()
    key.expiry_date = timezone.now() - timedelta(minutes=1)
    key.save()
    assert alice.client.get("/epcis/events").status_code == 401


def test_a_query_only_key_cannot_capture(alice):
    _, key = services.api_key_issue(organization=alice.organization, name="reader", can_capture=False)
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert post_doc(alice.client, f.document(alice_event())).status_code == 403
    assert alice.client.get("/epcis/events").status_code == 200


def test_a_capture_only_key_cannot_query(alice):
    _, key = services.api_key_issue(organization=alice.organization, name="writer", can_query=False)
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert alice.client.get("/epcis/events").status_code == 403


def test_api_keys_are_stored_hashed(alice):
    stored = alice.organization.api_keys.get()
    assert alice.key not in stored.hashed_key
    assert stored.hashed_key != alice.key


def test_requests_are_throttled_per_key(alice, settings):
    from rest_framework.settings import api_settings

    from provenance.auth import ApiKeyRateThrottle

    ApiKeyRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "3/min"}
    try:
        statuses = [alice.client.get("/epcis/events").status_code for _ in range(5)]
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
