"""Builders of EPCIS 2.0 documents and events for tests (valid unless a test breaks them)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from provenance.epcis.identifiers import gs1_check_digit

CONTEXT = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"cbvmda": "urn:epcglobal:cbv:mda:"},
]


def gtin(prefix: str, item: str = "00001", indicator: str = "0") -> str:
    body = indicator + prefix + item
    return body + str(gs1_check_digit(body))


def sgtin_urn(prefix: str, serial: str, item: str = "00001", indicator: str = "0") -> str:
    return f"urn:epc:id:sgtin:{prefix}.{indicator}{item}.{serial}"


def sgtin_dl(prefix: str, serial: str, item: str = "00001", indicator: str = "0") -> str:
    return f"https://id.gs1.org/01/{gtin(prefix, item, indicator)}/21/{serial}"


def sscc_urn(prefix: str, ref: str) -> str:
    return f"urn:epc:id:sscc:{prefix}.{ref}"


def sgln_urn(gln: str, prefix_len: int = 7, ext: str = "0") -> str:
    return f"urn:epc:id:sgln:{gln[:prefix_len]}.{gln[prefix_len:12]}.{ext}"


def pgln_urn(gln: str, prefix_len: int = 7) -> str:
    return f"urn:epc:id:pgln:{gln[:prefix_len]}.{gln[prefix_len:12]}"


def document(*events: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {
        "@context": copy.deepcopy(context or CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {"eventList": [copy.deepcopy(e) for e in events]},
    }


def commissioning(
    gln: str,
    epcs: list[str],
    *,
    lot: str = "L1",
    expiry: str = "2028-06-30",
    when: str = "2026-11-01T08:00:00.000-05:00",
    event_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": when[-6:],
        "epcList": epcs,
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": sgln_urn(gln)},
        "bizLocation": {"id": sgln_urn(gln)},
        "ilmd": {"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": expiry},
    }
    if event_id:
        event["eventID"] = event_id
    return event


def shipping(
    from_gln: str,
    to_gln: str,
    epcs: list[str],
    *,
    when: str = "2026-11-02T08:00:00.000-05:00",
    event_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": when[-6:],
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": sgln_urn(from_gln)},
        "sourceList": [
            {"type": "owning_party", "source": pgln_urn(from_gln)},
            {"type": "location", "source": sgln_urn(from_gln)},
        ],
        "destinationList": [
            {"type": "owning_party", "destination": pgln_urn(to_gln)},
            {"type": "location", "destination": sgln_urn(to_gln)},
        ],
    }
    if event_id:
        event["eventID"] = event_id
    return event


def receiving(
    from_gln: str,
    to_gln: str,
    epcs: list[str],
    *,
    when: str = "2026-11-03T08:00:00.000-05:00",
    event_id: str | None = None,
) -> dict[str, Any]:
    event = shipping(from_gln, to_gln, epcs, when=when, event_id=event_id)
    event["bizStep"] = "receiving"
    event["disposition"] = "in_progress"
    event["readPoint"] = {"id": sgln_urn(to_gln)}
    event["bizLocation"] = {"id": sgln_urn(to_gln)}
    return event


def new_event_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"
