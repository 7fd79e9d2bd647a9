from __future__ import annotations

import json

import pytest

from tests import factories as f

pytestmark = pytest.mark.django_db

ALICE_GLN = "0700001000008"
BOB_GLN = "0700002000007"


def capture(client, *events):
    response = client.post("/epcis/capture", data=json.dumps(f.document(*events)), content_type="application/json")
    assert response.status_code == 202, response.content
    return response


def events_of(response):
    assert response.status_code == 200, response.content
    return response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


@pytest.fixture
def chain(alice, bob):
    """Alice commissions two packs, ships one to Bob, Bob receives it."""
    a1, a2 = f.sgtin_urn("0700001", "A1"), f.sgtin_urn("0700001", "A2")
    capture(alice.client, f.commissioning(ALICE_GLN, [a1, a2]))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, [a1]))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, [a1]))
    return a1, a2


def test_a_query_in_urn_form_finds_an_event_captured_in_digital_link_form(alice):
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_dl("0700001", "DL1")]))
    found = events_of(alice.client.get("/epcis/events", {"MATCH_epc": f.sgtin_urn("0700001", "DL1")}))
    assert len(found) == 1


def test_a_query_in_digital_link_form_finds_an_event_captured_in_urn_form(alice):
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "U1")]))
    found = events_of(alice.client.get("/epcis/events", {"MATCH_anyEPC": f.sgtin_dl("0700001", "U1")}))
    assert len(found) == 1


def test_events_can_be_filtered_by_business_step_and_time(chain, operator):
    shipped = events_of(operator.client.get("/epcis/events", {"EQ_bizStep": "shipping"}))
    assert [e["bizStep"] for e in shipped] == ["shipping"]
    later = events_of(operator.client.get("/epcis/events", {"GE_eventTime": "2026-11-02T13:00:00Z"}))
    assert [e["bizStep"] for e in later] == ["shipping", "receiving"]
    before = events_of(operator.client.get("/epcis/events", {"LT_eventTime": "2026-11-02T13:00:00Z"}))
    assert [e["bizStep"] for e in before] == ["commissioning"]


def test_events_can_be_filtered_by_source_destination_and_location(chain, operator):
    to_bob = events_of(operator.client.get("/epcis/events", {"EQ_destination_owning_party": f.pgln_urn(BOB_GLN)}))
    assert {e["bizStep"] for e in to_bob} == {"shipping", "receiving"}
    at_bob = events_of(operator.client.get("/epcis/events", {"EQ_bizLocation": f.sgln_urn(BOB_GLN)}))
    assert [e["bizStep"] for e in at_bob] == ["receiving"]
    typed = events_of(
        operator.client.get("/epcis/events", {"eventType": "ObjectEvent", "EQ_readPoint": f.sgln_urn(ALICE_GLN)})
    )
    assert len(typed) == 2


def test_pages_follow_the_next_page_token(alice):
    for i in range(5):
        capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", f"PG{i}")]))
    seen = []
    params = {"perPage": "2"}
    while True:
        response = alice.client.get("/epcis/events", params)
        seen += events_of(response)
        token = response.headers.get("GS1-Next-Page-Token")
        if not token:
            break
        assert 'rel="next"' in response["Link"]
        params = {"perPage": "2", "nextPageToken": token}
    assert len(seen) == 5
    assert len({e["eventID"] for e in seen}) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"GE_eventTime": "yesterday"},
        {"eventType": "NoSuchEvent"},
        {"perPage": "0"},
        {"nextPageToken": "garbage"},
        {"MATCH_epc": "urn:epc:id:sgtin:bad"},
        {"EQ_unknownThing": "x"},
    ],
)
def test_a_bad_query_parameter_gets_a_problem_naming_it(alice, params):
    response = alice.client.get("/epcis/events", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"]


def test_identifiers_can_be_returned_as_urns_or_digital_links(alice):
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_dl("0700001", "FMT")]))
    as_urn = events_of(alice.client.get("/epcis/events", HTTP_GS1_EPC_FORMAT="Always_EPC_URN"))
    assert as_urn[0]["epcList"] == [f.sgtin_urn("0700001", "FMT")]
    as_dl = events_of(alice.client.get("/epcis/events", HTTP_GS1_EPC_FORMAT="Always_GS1_Digital_Link"))
    assert as_dl[0]["epcList"] == [f.sgtin_dl("0700001", "FMT")]
