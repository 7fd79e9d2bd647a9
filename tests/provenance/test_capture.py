from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from provenance.models import CaptureJob, CustodyEvent, EventKey
from tests import factories as f

pytestmark = pytest.mark.django_db

ALICE_GLN = "0700001000008"
BOB_GLN = "0700002000007"


def post_doc(client, doc, **headers):
    return client.post("/epcis/capture", data=json.dumps(doc), content_type="application/ld+json", **headers)


def alice_serials(*serials: str) -> list[str]:
    return [f.sgtin_urn("0700001", s) for s in serials]


def test_it_records_a_document_and_answers_202_with_the_capture_job(alice):
    doc = f.document(f.commissioning(ALICE_GLN, alice_serials("A1", "A2")))
    response = post_doc(alice.client, doc)
    assert response.status_code == 202, response.content
    location = response["Location"]
    assert location.startswith("/epcis/capture/")
    job = alice.client.get(location).json()
    assert job["success"] is True
    assert job["running"] is False
    assert job["recordedCount"] == 1
    assert CustodyEvent.objects.count() == 1
    event = CustodyEvent.objects.get()
    assert event.seq == 0
    assert event.event_id.startswith("ni:///sha-256;")
    assert event.event_id.endswith("?ver=CBV2.0")
    assert event.body == doc["epcisBody"]["eventList"][0]
    assert event.record_time <= timezone.now()


def test_sequence_numbers_are_gap_free_across_documents(alice):
    for i in range(3):
        doc = f.document(*(f.commissioning(ALICE_GLN, alice_serials(f"S{i}-{j}")) for j in range(4)))
        assert post_doc(alice.client, doc).status_code == 202
    assert list(CustodyEvent.objects.values_list("seq", flat=True)) == list(range(12))


def test_a_resent_identical_document_records_nothing_twice(alice):
    doc = f.document(f.commissioning(ALICE_GLN, alice_serials("R1")))
    first = post_doc(alice.client, doc)
    second = post_doc(alice.client, doc)
    assert second.status_code == 202
    assert first["Location"] == second["Location"]
    assert CustodyEvent.objects.count() == 1


def test_it_refuses_a_duplicate_event_with_409(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("D1"))
    assert post_doc(alice.client, f.document(event)).status_code == 202
    other = f.document(event, f.commissioning(ALICE_GLN, alice_serials("D2")))
    response = post_doc(alice.client, other)
    assert response.status_code == 409
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["errors"][0]["eventIndex"] == 0
    assert "errorDeclaration" in body["detail"]
    assert CustodyEvent.objects.count() == 1


def test_it_refuses_a_reused_event_id_with_409(alice):
    event_id = f.new_event_id()
    assert (
        post_doc(
            alice.client, f.document(f.commissioning(ALICE_GLN, alice_serials("E1"), event_id=event_id))
        ).status_code
        == 202
    )
    response = post_doc(alice.client, f.document(f.commissioning(ALICE_GLN, alice_serials("E2"), event_id=event_id)))
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "/eventID"


def test_it_accepts_an_error_declaration_that_repeats_the_original_event(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("C1"), event_id=f.new_event_id())
    assert post_doc(alice.client, f.document(event)).status_code == 202
    correction = dict(event)
    correction["eventID"] = f.new_event_id()
    correction["errorDeclaration"] = {
        "declarationTime": "2026-11-01T09:00:00.000Z",
        "reason": "incorrect_data",
        "correctiveEventIDs": [],
    }
    response = post_doc(alice.client, f.document(correction))
    assert response.status_code == 202, response.content
    assert CustodyEvent.objects.filter(is_error_declaration=True).count() == 1


def test_rollback_refuses_the_whole_document_and_leaves_no_trace_in_the_ledger(alice):
    good = f.commissioning(ALICE_GLN, alice_serials("G1"))
    bad = f.commissioning(ALICE_GLN, ["urn:epc:id:sgtin:0700001.000001"])  # no serial
    response = post_doc(alice.client, f.document(good, bad))
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["eventIndex"] == 1
    assert body["errors"][0]["field"].startswith("/epcList")
    assert "captureID" in body
    assert CustodyEvent.objects.count() == 0
    assert EventKey.objects.count() == 0
    job = alice.client.get(f"/epcis/capture/{body['captureID']}").json()
    assert job["success"] is False
    assert job["errors"]


def test_proceed_records_the_good_events_and_reports_the_bad_ones(alice):
    good = f.commissioning(ALICE_GLN, alice_serials("P1"))
    bad = f.commissioning(ALICE_GLN, alice_serials("P2"), when="2026-11-01T08:00:00.000")  # no offset
    response = post_doc(alice.client, f.document(good, bad), HTTP_GS1_CAPTURE_ERROR_BEHAVIOUR="proceed")
    assert response.status_code == 202
    job = response.json()
    assert job["recordedCount"] == 1
    assert job["errors"][0]["eventIndex"] == 1
    assert CustodyEvent.objects.count() == 1


def test_it_refuses_a_gtin_with_a_bad_check_digit(alice):
    bad_gtin = f.gtin("0700001")[:-1] + str((int(f.gtin("0700001")[-1]) + 1) % 10)
    event = f.commissioning(ALICE_GLN, [f"https://id.gs1.org/01/{bad_gtin}/21/X1"])
    response = post_doc(alice.client, f.document(event))
    assert response.status_code == 400
    assert "check digit" in response.json()["detail"]


def test_it_refuses_an_event_time_too_far_in_the_future(alice):
    when = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
    response = post_doc(alice.client, f.document(f.commissioning(ALICE_GLN, alice_serials("F1"), when=when)))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "/eventTime"


def test_it_refuses_an_epcis_1_urn_business_step(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("V1"))
    event["bizStep"] = "urn:epcglobal:cbv:bizstep:commissioning"
    response = post_doc(alice.client, f.document(event))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "/bizStep"


def test_it_refuses_patient_data_with_422(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("PD1"))
    event["bizStep"] = "dispensing"
    event["action"] = "OBSERVE"
    del event["ilmd"]
    event["example:patientName"] = "Jane Doe"
    doc = f.document(event, context=[*f.CONTEXT, {"example": "http://ns.example.com/epcis/"}])
    response = post_doc(alice.client, doc)
    assert response.status_code == 422
    assert "patient" in response.json()["detail"].lower()
    assert CustodyEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"[]", "application/json", 400),
        (b"{}", "text/plain", 415),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (
            json.dumps({"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}).encode(),
            "application/json",
            400,
        ),
    ],
)
def test_it_refuses_bodies_it_cannot_read_without_a_server_error(alice, body, content_type, status):
    response = alice.client.generic("POST", "/epcis/capture", body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"]


def test_it_refuses_more_events_than_the_advertised_limit_with_413(alice, settings):
    settings.EPCIS_CAPTURE_LIMIT = 2
    doc = f.document(*(f.commissioning(ALICE_GLN, alice_serials(f"L{i}")) for i in range(3)))
    response = post_doc(alice.client, doc)
    assert response.status_code == 413
    assert CustodyEvent.objects.count() == 0


def test_it_refuses_a_body_over_the_advertised_size_with_413(alice, settings):
    settings.EPCIS_CAPTURE_FILE_SIZE_LIMIT = 1000
    doc = f.document(*(f.commissioning(ALICE_GLN, alice_serials(f"Z{i}")) for i in range(10)))
    response = post_doc(alice.client, doc)
    assert response.status_code == 413


def test_options_advertises_the_capture_limits(alice):
    response = alice.client.options("/epcis/capture")
    assert response["GS1-EPCIS-Capture-Limit"].isdigit()
    assert response["GS1-EPCIS-Capture-File-Size-Limit"].isdigit()
    assert response["GS1-Capture-Error-Behaviour"] == "all"


def test_a_single_event_post_answers_201_with_its_location(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("ONE"))
    response = alice.client.post("/epcis/events", data=json.dumps(event), content_type="application/json")
    assert response.status_code == 201, response.content
    location = response["Location"]
    fetched = alice.client.get(location)
    assert fetched.status_code == 200
    assert fetched.json()["eventID"] == response.json()["eventID"]


def test_a_capture_job_of_another_organization_is_not_found(alice, bob):
    response = post_doc(alice.client, f.document(f.commissioning(ALICE_GLN, alice_serials("J1"))))
    assert bob.client.get(response["Location"]).status_code == 404
    assert CaptureJob.objects.count() == 1


def test_events_read_back_by_id_with_a_url_encoded_event_hash(alice):
    post_doc(alice.client, f.document(f.commissioning(ALICE_GLN, alice_serials("H1"))))
    event = CustodyEvent.objects.get()
    response = alice.client.get(f"/epcis/events/{quote(event.event_id, safe='')}")
    assert response.status_code == 200
    assert response.json()["epcList"] == alice_serials("H1")


def test_an_error_declaration_without_an_event_id_is_recorded_beside_the_event_it_retracts(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("C2"))
    assert post_doc(alice.client, f.document(event)).status_code == 202
    correction = dict(event)
    correction["errorDeclaration"] = {"declarationTime": "2026-11-01T09:00:00.000Z", "reason": "incorrect_data"}
    response = post_doc(alice.client, f.document(correction))
    assert response.status_code == 202, response.content
    retraction = CustodyEvent.objects.get(is_error_declaration=True)
    original = CustodyEvent.objects.get(is_error_declaration=False)
    assert retraction.event_id == original.event_id  # a retraction repeats the retracted event's id
    assert retraction.event_hash == original.event_hash
    assert post_doc(alice.client, f.document(correction)).status_code == 202  # identical resend
    assert CustodyEvent.objects.count() == 2


def test_an_error_declaration_repeating_the_retracted_event_id_is_recorded(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("C3"), event_id=f.new_event_id())
    assert post_doc(alice.client, f.document(event)).status_code == 202
    retraction = dict(event)
    retraction["errorDeclaration"] = {"declarationTime": "2026-11-01T09:00:00.000Z", "reason": "did_not_occur"}
    assert post_doc(alice.client, f.document(retraction)).status_code == 202
    assert CustodyEvent.objects.filter(event_id=event["eventID"]).count() == 2
    other_document = f.document(retraction)
    other_document["creationDate"] = "2026-11-02T10:00:00.000Z"  # not a byte-identical resend
    assert post_doc(alice.client, other_document).status_code == 409


def test_an_event_and_its_retraction_can_come_in_one_document(alice):
    event = f.commissioning(ALICE_GLN, alice_serials("C4"), event_id=f.new_event_id())
    retraction = dict(event, errorDeclaration={"declarationTime": "2026-11-01T09:00:00.000Z"})
    assert post_doc(alice.client, f.document(event, retraction)).status_code == 202
    assert CustodyEvent.objects.count() == 2
