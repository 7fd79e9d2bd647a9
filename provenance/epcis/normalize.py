"""One EPCIS 2.0 event reduced to the columns the ledger indexes, with every identifier in canonical form.

Partners send the same pack as an SGTIN URN or as a Digital Link on their own resolver's host; the
normalised event names it once (``https://id.gs1.org/01/<GTIN-14>/21/<serial>``), so one pack is one
graph node and one query key. The event itself is stored as received; ``to_event_json`` renders it
back for queries in the identifier form the client asked for (``GS1-EPC-Format``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .cbv import normalize_vocab
from .identifiers import IdentifierError, PrefixLengthLookup, canonical, is_gs1_identifier, to_urn_with
from .namespaces import expand, prefixes

# Where a lot number and an expiry date live in ILMD: CBV master-data attributes, as CURIE or full IRI.
_MDA_NAMESPACES = ("urn:epcglobal:cbv:mda:", "urn:epcglobal:cbv:mda#", "https://ref.gs1.org/cbv/")
_LOT_KEYS = frozenset(ns + "lotNumber" for ns in _MDA_NAMESPACES)
_EXPIRY_KEYS = frozenset(ns + "itemExpirationDate" for ns in _MDA_NAMESPACES)

EPC_ROLES = {
    "epcList": "epc",
    "parentID": "parent",
    "childEPCs": "child",
    "inputEPCList": "input",
    "outputEPCList": "output",
}
QUANTITY_ROLES = {
    "quantityList": "class",
    "childQuantityList": "child_class",
    "inputQuantityList": "input_class",
    "outputQuantityList": "output_class",
}


@dataclass(frozen=True)
class ErrorDeclaration:
    """The retraction carried by an event: when, why (bare CBV word or URI), and the corrective events."""

    declaration_time: datetime
    reason: str | None
    corrective_event_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NormalizedEvent:
    """The indexed view of one event. Identifiers canonical; CBV values bare words when standard."""

    event_type: str
    action: str | None
    event_time: datetime
    event_time_zone_offset: str
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    epcs: list[tuple[str, str]] = field(default_factory=list)
    quantities: list[tuple[str, str, float | None, str | None]] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    destinations: list[tuple[str, str]] = field(default_factory=list)
    biz_transactions: list[tuple[str | None, str]] = field(default_factory=list)
    lot_number: str | None = None
    expiry_date: date | None = None
    error_declaration: ErrorDeclaration | None = None
    event_id: str | None = None
    transformation_id: str | None = None
    persistent_disposition_set: list[str] = field(default_factory=list)
    persistent_disposition_unset: list[str] = field(default_factory=list)


def normalize_event(event: dict[str, Any], context: object = None) -> NormalizedEvent:
    """Read one event; ``context`` is the document's ``@context`` (for ILMD prefixes).

    Raises IdentifierError (a ValueError) for a malformed GS1 key, ValueError for unreadable times.
    """
    if not isinstance(event, Mapping):
        raise TypeError(f"An event is a JSON object, not {type(event).__name__}.")
    lot, expiry = _lot_and_expiry(_mapping(event.get("ilmd")), prefixes(context))
    persistent = _mapping(event.get("persistentDisposition"))
    return NormalizedEvent(
        event_type=str(event.get("type", "")),
        action=event.get("action"),
        event_time=parse_time(event.get("eventTime"), "eventTime"),
        event_time_zone_offset=str(event.get("eventTimeZoneOffset", "")),
        biz_step=_vocab(event.get("bizStep"), "bizStep"),
        disposition=_vocab(event.get("disposition"), "disposition"),
        read_point=_place(event.get("readPoint")),
        biz_location=_place(event.get("bizLocation")),
        epcs=_epcs(event),
        quantities=_quantities(event),
        sources=_parties(event.get("sourceList"), "source"),
        destinations=_parties(event.get("destinationList"), "destination"),
        biz_transactions=_transactions(event.get("bizTransactionList")),
        lot_number=lot,
        expiry_date=expiry,
        error_declaration=_error_declaration(event.get("errorDeclaration")),
        event_id=event.get("eventID") or None,
        transformation_id=_canonical_or_none(event.get("transformationID")),
        persistent_disposition_set=[normalize_vocab(v, "disposition") for v in _strings(persistent.get("set"))],
        persistent_disposition_unset=[normalize_vocab(v, "disposition") for v in _strings(persistent.get("unset"))],
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_time(value: object, field_name: str) -> datetime:
    """An aware UTC datetime from an ISO 8601 timestamp that carries its UTC offset."""
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be an ISO 8601 timestamp string, e.g. 2026-11-01T08:00:00.000-05:00.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{field_name} {value!r} is not an ISO 8601 timestamp; send e.g. 2026-11-01T08:00:00.000-05:00."
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{field_name} {value!r} has no UTC offset; add one (Z or ±HH:MM) so it is one instant.")
    return moment.astimezone(UTC)


def _vocab(value: object, kind: str) -> str | None:
    return normalize_vocab(value, kind) if isinstance(value, str) and value else None


def _place(value: object) -> str | None:
    if not isinstance(value, Mapping):
        return None
    return _canonical_or_none(value.get("id"))


def _canonical_or_none(value: object) -> str | None:
    return canonical(value) if isinstance(value, str) and value else None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _epcs(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, role in EPC_ROLES.items():
        found.extend((role, canonical(epc)) for epc in _strings(event.get(name)))
    return found


def _quantities(event: Mapping[str, Any]) -> list[tuple[str, str, float | None, str | None]]:
    found: list[tuple[str, str, float | None, str | None]] = []
    for name, role in QUANTITY_ROLES.items():
        elements = event.get(name)
        for element in elements if isinstance(elements, list) else []:
            if not isinstance(element, Mapping) or not isinstance(element.get("epcClass"), str):
                continue
            quantity = element.get("quantity")
            amount = float(quantity) if isinstance(quantity, (int, float)) and not isinstance(quantity, bool) else None
            found.append((role, canonical(element["epcClass"]), amount, element.get("uom") or None))
    return found


def _parties(entries: object, field_name: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get(field_name), str):
            type_ = entry.get("type")
            found.append(
                (
                    normalize_vocab(type_, "sourceDestType") if isinstance(type_, str) else "",
                    canonical(entry[field_name]),
                )
            )
    return found


def _transactions(entries: object) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("bizTransaction"), str):
            found.append((_vocab(entry.get("type"), "bizTransactionType"), _lenient_canonical(entry["bizTransaction"])))
    return found


def _lenient_canonical(value: str) -> str:
    """Business transaction IDs are often partner URIs that merely look like keys: keep them if not valid GS1."""
    try:
        return canonical(value)
    except IdentifierError:
        return value


def _lot_and_expiry(ilmd: Mapping[str, Any], namespaces: Mapping[str, str]) -> tuple[str | None, date | None]:
    lot: str | None = None
    expiry: date | None = None
    for key, value in ilmd.items():
        iri = expand(key, namespaces)
        if iri in _LOT_KEYS and isinstance(value, (str, int)):
            lot = str(value).strip() or None
        elif iri in _EXPIRY_KEYS and value is not None:
            expiry = parse_expiry(value)
    return lot, expiry


def parse_expiry(value: object) -> date:
    """An ILMD itemExpirationDate: an xsd:date YYYY-MM-DD."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError(f"itemExpirationDate {value!r} must be a date written YYYY-MM-DD, e.g. 2028-06-30.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"itemExpirationDate {value!r} is not a calendar date; write YYYY-MM-DD.") from None


def _error_declaration(value: object) -> ErrorDeclaration | None:
    if not isinstance(value, Mapping):
        return None
    reason = value.get("reason")
    return ErrorDeclaration(
        declaration_time=parse_time(value.get("declarationTime"), "errorDeclaration/declarationTime"),
        reason=normalize_vocab(reason, "errorReason") if isinstance(reason, str) and reason else None,
        corrective_event_ids=tuple(_strings(value.get("correctiveEventIDs"))),
    )


# --------------------------------------------------------------------------------------------------------------
# Rendering stored events for query responses
# --------------------------------------------------------------------------------------------------------------

_ID_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_ID_FIELDS = ("parentID", "transformationID")
_PLACES = ("readPoint", "bizLocation")
_TYPED = {"sourceList": "source", "destinationList": "destination", "bizTransactionList": "bizTransaction"}


def to_event_json(
    event: Mapping[str, Any], epc_format: str, prefix_length: PrefixLengthLookup | None = None
) -> dict[str, Any]:
    """The stored event as EPCIS 2.0 JSON for a query response, identifiers in the requested form.

    ``epc_format`` is the GS1-EPC-Format header: ``Always_GS1_Digital_Link`` (canonical Digital Links),
    ``Always_EPC_URN`` (URNs wherever ``prefix_length`` knows the GS1 Company Prefix length, canonical
    Digital Links elsewhere: a URN cannot be built without it), anything else (``No_Preference``,
    ``Never_Translates``): as received.
    """
    rendered = copy.deepcopy(dict(event))
    if epc_format == "Always_GS1_Digital_Link":
        convert: Callable[[str], str] = _to_digital_link
    elif epc_format == "Always_EPC_URN":
        lookup = prefix_length or (lambda _digits: None)

        def convert(value: str) -> str:
            return _to_urn(value, lookup)
    else:
        return rendered
    _rewrite_identifiers(rendered, convert)
    return rendered


def _to_digital_link(value: str) -> str:
    try:
        return canonical(value)
    except IdentifierError:
        return value  # stored events were validated; anything odd is shown as it was received


def _to_urn(value: str, lookup: PrefixLengthLookup) -> str:
    if value[:8].lower() == "urn:epc:":
        return value  # already a URN
    try:
        return to_urn_with(value, lookup)
    except IdentifierError:
        return value


def _rewrite_identifiers(event: dict[str, Any], convert: Callable[[str], str]) -> None:
    def one(value: object) -> object:
        return convert(value) if isinstance(value, str) and is_gs1_identifier(value) else value

    for name in _ID_LISTS:
        if isinstance(event.get(name), list):
            event[name] = [one(v) for v in event[name]]
    for name in _ID_FIELDS:
        if name in event:
            event[name] = one(event[name])
    for name in QUANTITY_ROLES:
        for element in event.get(name) or []:
            if isinstance(element, dict) and "epcClass" in element:
                element["epcClass"] = one(element["epcClass"])
    for name in _PLACES:
        if isinstance(event.get(name), dict) and "id" in event[name]:
            event[name]["id"] = one(event[name]["id"])
    for name, key in _TYPED.items():
        for entry in event.get(name) or []:
            if isinstance(entry, dict) and key in entry:
                entry[key] = one(entry[key])
