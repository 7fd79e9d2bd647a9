"""Shared helpers for the EPCIS tests: fixture paths, a valid event to break, and a validation shortcut."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provenance.epcis.eventhash import document_events
from provenance.epcis.identifiers import gs1_check_digit
from provenance.epcis.validation import Problem, validate_document, validate_event

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "epcis"
GS1_EXAMPLES = FIXTURES / "gs1-examples"
HASH_VECTORS = FIXTURES / "hash-vectors"
NEGATIVE = FIXTURES / "gs1-negative"

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
CONTEXT: list[Any] = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"cbvmda": "urn:epcglobal:cbv:mda:", "example": "https://ns.example.com/epcis/"},
]

# A US NDC-based GTIN-14: indicator 0, "03", the 10 NDC digits 0045012345, check digit.
NDC_GTIN = "0030045012345" + str(gs1_check_digit("0030045012345"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def gs1_example_files() -> list[Path]:
    return sorted(GS1_EXAMPLES.rglob("*.jsonld"))


def example_id(path: Path) -> str:
    return str(path.relative_to(GS1_EXAMPLES))


def commissioning_event(**overrides: Any) -> dict[str, Any]:
    """A valid DSCSA-style commissioning ObjectEvent; tests break one thing at a time."""
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T08:00:00.000-05:00",
        "eventTimeZoneOffset": "-05:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        "bizLocation": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        "ilmd": {"cbvmda:lotNumber": "L2026A", "cbvmda:itemExpirationDate": "2028-06-30"},
    }
    event.update(copy.deepcopy(overrides))
    return event


def shipping_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T09:00:00.000-05:00",
        "eventTimeZoneOffset": "-05:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141000005:PO-77"}],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00000"}],
        "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:4012345.00000"}],
    }
    event.update(copy.deepcopy(overrides))
    return event


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": copy.deepcopy(CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {"eventList": [copy.deepcopy(e) for e in events]},
    }


def problems_of(event: Any, *, now: datetime = NOW) -> list[Problem]:
    return validate_event(event, index=0, now=now, max_future_skew=SKEW, context=CONTEXT)


def document_problems(doc: Any, *, max_events: int = 1000) -> list[Problem]:
    return validate_document(doc, now=NOW, max_future_skew=SKEW, max_events=max_events)


def fields_of(problems: list[Problem]) -> list[str | None]:
    return [p.field for p in problems]


def identifier_values(event: dict[str, Any]) -> Iterator[str]:
    """Every identifier an event names (EPCs, classes, places, parties), as written."""
    for name in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        yield from event.get(name, [])
    if "parentID" in event:
        yield event["parentID"]
    for name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        yield from (q["epcClass"] for q in event.get(name, []))
    for name in ("readPoint", "bizLocation"):
        if name in event:
            yield event[name]["id"]
    for name, key in (("sourceList", "source"), ("destinationList", "destination")):
        yield from (entry[key] for entry in event.get(name, []))


def all_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return document_events(doc)
