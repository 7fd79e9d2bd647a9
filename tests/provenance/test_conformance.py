"""Every GS1 EPCIS 2.0 example document is captured and every event reads back, by id and by query."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from provenance.epcis.eventhash import event_hash
from provenance.epcis.identifiers import IdentifierError, canonical

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "epcis" / "gs1-examples"
DOCUMENTS = sorted(p for p in EXAMPLES.rglob("*.jsonld") if p.name != "EPCISQueryDocument.jsonld")


def test_the_fixtures_hold_the_gs1_examples():
    assert len(DOCUMENTS) >= 28


def _events(doc):
    return doc["epcisBody"]["eventList"]


def _first_epc(event):
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        for epc in event.get(key, []):
            try:
                canonical(epc)
                return epc
            except IdentifierError:
                continue
    parent = event.get("parentID")
    return parent


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_gs1_example_is_captured_and_reads_back(operator, path):
    raw = path.read_bytes()
    doc = json.loads(raw)
    response = operator.client.generic("POST", "/epcis/capture", raw, content_type="application/ld+json")
    assert response.status_code == 202, response.content.decode()[:2000]
    events = _events(doc)
    assert response.json()["recordedCount"] == len(events)

    listed = operator.client.get("/epcis/events", {"perPage": "1000"}).json()
    returned = listed["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert len(returned) == len(events)

    for event, back in zip(events, returned, strict=True):
        event_id = event.get("eventID") or event_hash(event, doc["@context"])
        assert back["eventID"] == event_id
        got = operator.client.get(f"/epcis/events/{quote(event_id, safe='')}")
        assert got.status_code == 200
        body = got.json()
        assert {k: v for k, v in body.items() if k not in ("eventID", "recordTime")} == {
            k: v for k, v in event.items() if k not in ("eventID", "recordTime")
        }
        epc = _first_epc(event)
        if epc:
            found = operator.client.get("/epcis/events", {"MATCH_anyEPC": epc, "perPage": "1000"}).json()
            ids = [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
            assert event_id in ids
