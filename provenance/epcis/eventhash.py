"""CBV 2.0 "EPCIS Event Hash ID": ``ni:///sha-256;<hex>?ver=CBV2.0`` over a canonical pre-hash string.

The same event gives the same hash whatever its serialisation: key order, URN or Digital Link
identifiers, bare-word or IRI vocabulary, time zone of the timestamps. Used for duplicate detection
and as the eventID of events captured without one.

Algorithm (CBV 2.0 §8.9, reference implementation RalphTro/epcis-event-hash-generator; checked
against its test vectors in tests/fixtures/epcis/hash-vectors):

1. ``eventType=<type>``, then the standard fields in the canonical order of ``_ORDER``, each as
   ``key=value`` (a parent's key is followed by its children), with no separators;
2. then every other field (business transactions, sources, destinations, ILMD, extensions) rendered
   the same way, the resulting strings sorted;
3. list members are sorted; a business transaction's or source's ``type`` comes first;
4. timestamps in UTC at millisecond precision with ``Z``; numbers without trailing zeros;
   CBV values as IRIs (``https://ref.gs1.org/cbv/BizStep-shipping``); CURIEs expanded, extension keys
   written ``{namespace}localName``; GS1 keys as constrained canonical Digital Links;
5. not hashed: ``eventID``, ``recordTime``, ``errorDeclaration`` (so a retraction hashes like the event it
   retracts), comments, and the fields a document lists in ``ignoreFields``.

Deliberate differences from the reference implementation, all outside its test vectors and all about
inputs where it is either order-dependent or machine-dependent: a business transaction's ``type`` is
put first whatever the JSON key order; JSON booleans are ``true``/``false`` (the reference writes
Python's ``True``); a timestamp without a UTC offset is read as UTC (the reference uses the machine's
zone); half a millisecond rounds up; CBV bare words are expanded by position (bizStep, disposition...)
rather than by matching any equal string anywhere in the document; standard-context prefixes
(``cbvmda:``, ``gs1:``...) are expanded in keys even when the document does not redeclare them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from . import cbv
from .identifiers import IdentifierError, canonical, is_gs1_identifier
from .namespaces import RDFS_COMMENT, expand, local_name, prefixes, split_curie

HASH_VERSION = "CBV2.0"

# The canonical property order of the standard event fields (after eventType).
_ORDER = (
    "eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID", "epcList", "inputEPCList", "childEPCs",
    "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList", "outputQuantityList", "action",
    "transformationID", "bizStep", "disposition", "persistentDisposition", "readPoint", "bizLocation",
    "sensorElementList",
)  # fmt: skip
_NOT_HASHED = frozenset({"type", "eventID", "recordTime", "errorDeclaration", "@context"})
_EPC_LISTS = frozenset({"epcList", "inputEPCList", "outputEPCList", "childEPCs"})
_QUANTITY_LISTS = frozenset({"quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"})
_TYPED_LISTS = {"bizTransactionList": "bizTransaction", "sourceList": "source", "destinationList": "destination"}
_TYPED_VOCAB = {"bizTransaction": "bizTransactionType", "source": "sourceDestType", "destination": "sourceDestType"}
_SENSOR_METADATA_ORDER = (
    "time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules",
)  # fmt: skip
_SENSOR_REPORT_ORDER = (
    "type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time", "microorganism",
    "chemicalSubstance", "value", "component", "stringValue", "booleanValue", "hexBinaryValue", "uriValue",
    "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "uom", "coordinateReferenceSystem",
)  # fmt: skip
_SENSOR_VOCAB = {"type": "measurementType", "exception": "sensorAlertType", "component": "component"}
_TIME_KEYS = frozenset({"eventTime", "time", "startTime", "endTime"})
_LEGACY_CBV = (
    ("urn:epcglobal:cbv:bizstep:", cbv.CBV_NAMESPACE + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", cbv.CBV_NAMESPACE + "Disp-"),
    ("urn:epcglobal:cbv:btt:", cbv.CBV_NAMESPACE + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", cbv.CBV_NAMESPACE + "SDT-"),
    ("urn:epcglobal:cbv:er:", cbv.CBV_NAMESPACE + "ER-"),
)


def event_hash(event: Mapping[str, Any], context: object = None, *, ignore_fields: Iterable[str] = ()) -> str:
    """The CBV 2.0 event hash ID of one event; ``context`` is the document's ``@context``."""
    digest = hashlib.sha256(prehash(event, context, ignore_fields=ignore_fields).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"


def prehash(event: Mapping[str, Any], context: object = None, *, ignore_fields: Iterable[str] = ()) -> str:
    """The canonical pre-hash string of one event (what ``event_hash`` hashes)."""
    return _Canon(context, ignore_fields).event(event)


def document_events(document: Mapping[str, Any]) -> list[Any]:
    """The events of an EPCISDocument or EPCISQueryDocument (empty when there are none)."""
    body = document.get("epcisBody")
    if not isinstance(body, Mapping):
        return []
    if isinstance(body.get("eventList"), list):
        return list(body["eventList"])
    results = body.get("queryResults")
    if isinstance(results, Mapping) and isinstance(results.get("resultsBody"), Mapping):
        events = results["resultsBody"].get("eventList")
        return list(events) if isinstance(events, list) else []
    return [body["event"]] if isinstance(body.get("event"), Mapping) else []


def document_ignore_fields(document: Mapping[str, Any]) -> list[str]:
    """Fields a document asks hashers to leave out (``<prefix>:ignoreFields``, at the top or in queryResults)."""
    places: list[Any] = [document]
    body = document.get("epcisBody")
    if isinstance(body, Mapping):
        places.append(body.get("queryResults"))
    found: list[str] = []
    for place in places:
        if isinstance(place, Mapping):
            for key, value in place.items():
                if local_name(key) == "ignoreFields" and isinstance(value, list):
                    found.extend(v for v in value if isinstance(v, str))
    return found


def document_prehashes(document: Mapping[str, Any]) -> list[str]:
    canon = _Canon(document.get("@context"), document_ignore_fields(document))
    return [canon.event(event) for event in document_events(document)]


def document_event_hashes(document: Mapping[str, Any]) -> list[str]:
    """The event hash of every event of a document, honouring its ``@context`` and ``ignoreFields``."""
    context, ignore = document.get("@context"), document_ignore_fields(document)
    return [event_hash(event, context, ignore_fields=ignore) for event in document_events(document)]


# --------------------------------------------------------------------------------------------------------------
# Value canonicalisation
# --------------------------------------------------------------------------------------------------------------


def canonical_timestamp(text: str) -> str:
    """UTC, millisecond precision (half a millisecond rounds up), ``Z``; unparseable text unchanged."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # deterministic, unlike the machine's zone
    moment = moment.astimezone(UTC)
    micro = moment.microsecond
    moment = moment.replace(microsecond=0) + timedelta(milliseconds=(micro + 500) // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def canonical_number(text: str) -> str:
    """Numbers without trailing zeros or a leading +: ``452.0`` -> ``452``; anything else unchanged.

    Python float semantics, as in the reference implementation, so numeric-looking strings (a lot
    ``0012`` in an extension, say) are canonicalised too; non-finite values are left alone.
    """
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else str(number)


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).strip()


class _Canon:
    """Renders events to pre-hash strings with one document's namespaces and ignored fields."""

    def __init__(self, context: object, ignore_fields: Iterable[str]) -> None:
        self.namespaces = prefixes(context)
        self.ignored = {expand(f, self.namespaces) for f in ignore_fields}

    # -- values ---------------------------------------------------------------------------------------------

    def value(self, value: object) -> str:
        """CURIE expansion, CBV 1.x URNs to IRIs, numbers, GS1 keys to canonical Digital Links."""
        text = _scalar_text(value)
        if not text:
            return ""
        text = self._expand_value(text)
        for urn, iri in _LEGACY_CBV:
            if text.startswith(urn):
                text = iri + text[len(urn) :]
        text = canonical_number(text)
        if is_gs1_identifier(text):
            try:
                return canonical(text)
            except IdentifierError:
                return text  # malformed keys are refused by validation; hash them as they are
        return text

    def _expand_value(self, text: str) -> str:
        parts = split_curie(text)
        if parts is None or parts[0] not in self.namespaces:
            return text
        return self.namespaces[parts[0]] + parts[1]

    def vocab(self, value: object, kind: str) -> str:
        text = _scalar_text(value)
        return self.value(cbv.expand_vocab(text, kind))

    def key(self, name: str) -> str:
        """``{namespace}localName`` for a CURIE with a known prefix, the name itself otherwise."""
        parts = split_curie(name)
        if parts is None or parts[0] not in self.namespaces:
            return name
        return "{" + self.namespaces[parts[0]] + "}" + parts[1]

    def skipped(self, name: str) -> bool:
        expanded = expand(name, self.namespaces)
        return name == "comment" or expanded == RDFS_COMMENT or expanded in self.ignored or name in self.ignored

    # -- events ---------------------------------------------------------------------------------------------

    def event(self, event: Mapping[str, Any]) -> str:
        out = ["eventType=" + _scalar_text(event.get("type"))]
        for name in _ORDER:
            if name in event and not self.skipped(name):
                out.append(self.standard_field(name, event[name]))
        rest: list[str] = []
        for name, value in event.items():
            if name not in _ORDER and name not in _NOT_HASHED and not self.skipped(name):
                rest.extend(self.generic(name, value))
        out.extend(sorted(s for s in rest if s))
        return "".join(out)

    def standard_field(self, name: str, value: Any) -> str:
        if name == "eventTime":
            return _pair(name, canonical_timestamp(_scalar_text(value)))
        if name in _EPC_LISTS:
            return _parent(name, sorted(_pair("epc", self.value(v)) for v in _as_list(value)))
        if name in _QUANTITY_LISTS:
            return _parent(name, sorted(self.quantity(q) for q in _as_list(value) if isinstance(q, Mapping)))
        if name in ("bizStep", "disposition"):
            return _pair(name, self.vocab(value, name))
        if name == "persistentDisposition":
            return self.persistent_disposition(value)
        if name in ("readPoint", "bizLocation"):
            return self.ordered_object(name, value, ("id",))
        if name == "sensorElementList":
            return _parent(name, sorted(self.sensor_element(e) for e in _as_list(value) if isinstance(e, Mapping)))
        # eventTimeZoneOffset, certificationInfo (one or many), parentID, action, transformationID
        return "".join(sorted(_pair(name, self.value(v)) for v in _as_list(value)))

    def quantity(self, element: Mapping[str, Any]) -> str:
        return self.ordered_object("quantityElement", element, ("epcClass", "quantity", "uom"), always=True)

    def persistent_disposition(self, value: Any) -> str:
        if not isinstance(value, Mapping):
            return ""
        parts = []
        for name in ("set", "unset"):
            parts.extend(sorted(_pair(name, self.vocab(v, "disposition")) for v in _as_list(value.get(name))))
        return _parent("persistentDisposition", parts)

    def sensor_element(self, element: Mapping[str, Any]) -> str:
        parts = []
        if isinstance(element.get("sensorMetadata"), Mapping):
            parts.append(self.ordered_object("sensorMetadata", element["sensorMetadata"], _SENSOR_METADATA_ORDER))
        reports = [r for r in _as_list(element.get("sensorReport")) if isinstance(r, Mapping)]
        parts.extend(sorted(self.ordered_object("sensorReport", r, _SENSOR_REPORT_ORDER) for r in reports))
        extras = {k: v for k, v in element.items() if k not in ("sensorMetadata", "sensorReport")}
        parts.extend(self.extensions(extras))
        return _parent("sensorElement", parts)

    def ordered_object(self, name: str, obj: Any, order: tuple[str, ...], *, always: bool = False) -> str:
        """Known children in the given order, then the others (extensions) sorted, after the parent's key."""
        if not isinstance(obj, Mapping):
            return ""
        parts = []
        for key in order:
            if key not in obj or self.skipped(key):
                continue
            if key in _TIME_KEYS:
                text = canonical_timestamp(_scalar_text(obj[key]))
            elif key in _SENSOR_VOCAB and name == "sensorReport":
                text = self.vocab(obj[key], _SENSOR_VOCAB[key])
            else:
                text = self.value(obj[key])
            parts.append(_pair(key, text))
        parts.extend(self.extensions({k: v for k, v in obj.items() if k not in order}))
        return _parent(name, parts, always=always)

    def extensions(self, fields: Mapping[str, Any]) -> list[str]:
        rendered: list[str] = []
        for name, value in fields.items():
            if not self.skipped(name):
                rendered.extend(self.generic(name, value))
        return sorted(s for s in rendered if s)

    # -- everything else: business transactions, sources/destinations, ILMD, extensions ---------------------

    def generic(self, name: str, value: Any) -> list[str]:
        """Pre-hash strings of one field; a JSON array gives one sibling per member (as XML repeats elements)."""
        if name in _TYPED_LISTS:
            return [self.typed_list(name, value)]
        key = self.key(name)
        if not isinstance(value, list):
            return [self.node(key, value)]
        if not value:
            return []
        if name.endswith("List"):
            # The XML form names list members after the list ("fooList" holds "foo" elements).
            return [key + "".join(sorted(self.node(key[:-4], v) for v in value))]
        return [self.node(key, v) for v in value]

    def node(self, key: str, value: Any) -> str:
        if isinstance(value, Mapping):
            return key + "".join(self.extensions(value))
        if isinstance(value, list):
            return key + "".join(sorted(self.node(key, v) for v in value))
        text = self.value(value)
        return key + ("=" + text if text else "")

    def typed_list(self, name: str, value: Any) -> str:
        field = _TYPED_LISTS[name]
        entries = []
        for item in _as_list(value):
            if not isinstance(item, Mapping):
                continue
            typed = _pair("type", self.vocab(item["type"], _TYPED_VOCAB[field])) if "type" in item else ""
            entries.append(typed + _pair(field, self.value(item.get(field))))
        return _parent(name, sorted(entries))


def _pair(key: str, text: str) -> str:
    return f"{key}={text}" if text else ""


def _parent(key: str, children: list[str], *, always: bool = False) -> str:
    body = "".join(children)
    return key + body if body or always else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
