"""Validation of captured EPCIS 2.0 documents: GS1's JSON schema, then what the schema cannot check.

The schema (GS1 EPCIS-JSON-Schema.json, with format checking) checks shape, required fields, CBV
enums and that identifiers are URIs. It does not check GS1 key syntax or check digits, time offsets
beyond the pattern, future timestamps, or lot/expiry formats: those are checked here. Each problem
names the event (index), the field (JSON pointer) and what to do; 400 for schema/syntax, 422 for
well-formed but unacceptable content, 413 for too many events.

Speed (one core of this machine, 1,000 ObjectEvents of 10 SGTINs each, with ILMD, transactions and
parties; see bench/validate.py):
* python-jsonschema 4.26 Draft7Validator + FormatChecker: 3.3 s for the whole document, 3.2 s event by
  event (2.1 s without format checks): too slow, the time goes into its $ref/anyOf machinery;
* fastjsonschema 2.22 (compiled to Python): 0.19 s, but its built-in "uri" and "date-time" formats are
  looser than RFC 3986/3339 (it accepts ``http://x.com/<a>``, ``1abc:def``, ``+0500`` offsets);
* jsonschema-rs 0.60 (Rust): 0.008 s, and the same verdict as python-jsonschema's RFC checkers on every
  format case tried.
So jsonschema-rs is used when installed, compiled once; python-jsonschema (a dependency anyway) is the
fallback with identical results, only slower. The whole of ``validate_document`` (schema plus the checks
below, identifier caches cold) measured 0.22 s per 1,000 such events (10,000 EPCs) with jsonschema-rs,
3.2 s with the fallback; most of the 0.22 s is parsing and check-digit checking of the 10,000 EPCs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from . import cbv
from .eventhash import document_events
from .identifiers import GS1Identifier, IdentifierError, is_gs1_identifier, parse
from .namespaces import prefixes, split_curie
from .problem import CAPTURE_LIMIT, VALIDATION, Problem, pointer

__all__ = ["EVENT_TYPES", "Problem", "validate_document", "validate_event"]

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
_DOCUMENT_TYPES = ("EPCISDocument", "EPCISQueryDocument")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_LOT = re.compile(r"""[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}""")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MDA = ("urn:epcglobal:cbv:mda:", "urn:epcglobal:cbv:mda#", "https://ref.gs1.org/cbv/")
# URI schemes of absolute IRIs used as field names; anything else before a colon is a CURIE prefix.
_IRI_SCHEMES = frozenset({"urn", "http", "https", "tag"})
# Standard event fields: everything else at the top of an event is an extension and needs a namespace.
_STANDARD_FIELDS = frozenset({
    "@context", "type", "eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "certificationInfo",
    "errorDeclaration", "epcList", "parentID", "childEPCs", "inputEPCList", "outputEPCList", "quantityList",
    "childQuantityList", "inputQuantityList", "outputQuantityList", "action", "transformationID", "bizStep",
    "disposition", "persistentDisposition", "readPoint", "bizLocation", "bizTransactionList", "sourceList",
    "destinationList", "sensorElementList", "ilmd",
})  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaError:
    """One schema violation, engine-independent: where (path in the instance), which keyword, the message."""

    path: tuple[str | int, ...]
    keyword: str
    message: str
    instance: Any


class _Schema:
    """GS1's schema compiled once, for documents (events left out) and for single events."""

    def __init__(self) -> None:
        text = resources.files(__package__).joinpath("schema/EPCIS-JSON-Schema.json").read_text(encoding="utf-8")
        schema = json.loads(text)
        event_schema = {
            "$schema": schema["$schema"],
            "definitions": schema["definitions"],
            "allOf": [{"$ref": "#/definitions/EPCIS-Document-Event"}],
        }
        try:
            import jsonschema_rs
        except ImportError:  # same verdicts, about 400 times slower: see the module docstring
            from jsonschema import Draft7Validator, FormatChecker

            checker = FormatChecker()
            self.engine = "jsonschema"
            self._document: Any = Draft7Validator(schema, format_checker=checker)
            self._event: Any = Draft7Validator(event_schema, format_checker=checker)
        else:
            self.engine = "jsonschema-rs"
            self._document = jsonschema_rs.Draft7Validator(schema, validate_formats=True)
            self._event = jsonschema_rs.Draft7Validator(event_schema, validate_formats=True)

    def document_errors(self, document: Any) -> list[SchemaError]:
        return list(self._errors(self._document, document))

    def event_errors(self, event: Any) -> list[SchemaError]:
        return list(self._errors(self._event, event))

    def _errors(self, validator: Any, instance: Any) -> Iterator[SchemaError]:
        for error in validator.iter_errors(instance):
            if self.engine == "jsonschema":
                path, schema_path = tuple(error.absolute_path), list(error.absolute_schema_path)
            else:
                path, schema_path = tuple(error.instance_path), list(error.schema_path)
            yield SchemaError(path, _keyword(schema_path), error.message, error.instance)


def _keyword(schema_path: list[Any]) -> str:
    """The failing keyword; a property-name rule is reported as such even when it fails through anyOf."""
    if "propertyNames" in schema_path:
        return "propertyNames"
    return next((p for p in reversed(schema_path) if isinstance(p, str)), "")


@lru_cache(maxsize=1)
def schema() -> _Schema:
    return _Schema()


# --------------------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------------------


def validate_document(
    doc: object, *, now: datetime, max_future_skew: timedelta, max_events: int
) -> list[Problem]:  # fmt: skip
    """Every problem of a captured document; an empty list means it may be recorded.

    Accepts EPCISDocument and EPCISQueryDocument (its queryResults eventList). A problem without an
    ``event_index`` concerns the document itself.
    """
    if not isinstance(doc, Mapping):
        return [
            _doc_problem(
                "Not an EPCIS document",
                f"The body is a JSON {_json_type(doc)}; send an EPCISDocument "
                "object (type, schemaVersion, creationDate, @context, epcisBody.eventList).",
            )
        ]
    kind = doc.get("type")
    if kind not in _DOCUMENT_TYPES:
        return [_not_a_document(kind)]
    events_place = _events_place(doc)
    events = document_events(doc)
    if len(events) > max_events:
        return [
            Problem(
                status=413,
                type=CAPTURE_LIMIT,
                title="Too many events",
                detail=f"The document has {len(events)} events; this service captures at most {max_events} per "
                "request. Split it into several documents of at most that many events each.",
                field=pointer(*events_place, "eventList"),
            )
        ]
    problems = [_schema_problem(e, None, {}) for e in schema().document_errors(_without_events(doc))]
    context = doc.get("@context")
    for index, event in enumerate(events):
        problems.extend(validate_event(event, index=index, now=now, max_future_skew=max_future_skew, context=context))
    return problems


def _events_place(doc: Mapping[str, Any]) -> tuple[str, ...]:
    if doc.get("type") == "EPCISQueryDocument":
        return ("epcisBody", "queryResults", "resultsBody")
    return ("epcisBody",)


def _without_events(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document with an empty eventList: its header is checked once, its events one by one."""
    shell = dict(doc)
    body = shell.get("epcisBody")
    if not isinstance(body, Mapping):
        return shell
    body = dict(body)
    shell["epcisBody"] = body
    if isinstance(body.get("eventList"), list):
        body["eventList"] = []
    results = body.get("queryResults")
    if isinstance(results, Mapping) and isinstance(results.get("resultsBody"), Mapping):
        inner = dict(results["resultsBody"])
        if isinstance(inner.get("eventList"), list):
            inner["eventList"] = []
        body["queryResults"] = {**results, "resultsBody": inner}
    return shell


def _not_a_document(kind: object) -> Problem:
    if kind in EVENT_TYPES:
        detail = (
            f"The body is a single {kind}; POST it to /events, or wrap it in an EPCISDocument "
            "(epcisBody.eventList) to send it to /capture."
        )
    else:
        detail = (
            f"The body has type {kind!r}; send an EPCISDocument (or an EPCISQueryDocument) with "
            '@context, schemaVersion "2.0", creationDate and epcisBody.eventList.'
        )
    return _doc_problem("Not an EPCIS document", detail, field="/type")


def _doc_problem(title: str, detail: str, field: str | None = None) -> Problem:
    return Problem(status=400, type=VALIDATION, title=title, detail=detail, field=field)


def _json_type(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


# --------------------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------------------


class _Collector:
    """Problems of one event; remembers which fields already have a clear problem."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.problems: list[Problem] = []

    def add(self, status: int, title: str, detail: str, *path: object) -> None:
        self.problems.append(Problem(status, VALIDATION, title, detail, self.index, pointer(*path) or None))

    def covers(self, field: str) -> bool:
        """True when a problem is already reported at this field or above it (a clearer one than the schema's)."""
        return any(p.field is not None and (field == p.field or field.startswith(p.field + "/")) for p in self.problems)


def validate_event(
    event: dict[str, Any], *, index: int, now: datetime, max_future_skew: timedelta, context: object = None
) -> list[Problem]:
    """Every problem of one event (``index`` is its position in the document's eventList)."""
    found = _Collector(index)
    if not isinstance(event, Mapping):
        found.add(400, "Not an event", f"Event {index} is a JSON {_json_type(event)}; an event is a JSON object.")
        return found.problems
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        found.add(
            400,
            "Unsupported event type",
            f"type {kind!r}: this service records the EPCIS 2.0 event types "
            f"{', '.join(EVENT_TYPES)}. Send one of those.",
            "type",
        )
        return found.problems
    _check_times(event, found, now, max_future_skew)
    _check_identifiers(event, found)
    _check_vocabulary(event, found)
    _check_ilmd(event, found, context)
    _check_quantities(event, found)
    _check_extension_prefixes(event, found, context)
    _add_schema_problems(event, found)
    return found.problems


def _add_schema_problems(event: Mapping[str, Any], found: _Collector) -> None:
    errors = schema().event_errors(event)
    specific = [e for e in errors if e.path or e.keyword not in ("anyOf", "allOf", "oneOf")]
    for error in specific:
        problem = _schema_problem(error, found.index, event)
        if problem.field is None or not found.covers(problem.field):
            found.problems.append(problem)
    if len(specific) < len(errors) and not found.problems:
        # Only an event-level rule failed (what the event is about, ILMD with ADD): say which one.
        found.add(400, "Incomplete event", _event_level_rule(event))


def _a(kind: object, *, start: bool = False) -> str:
    """'an ObjectEvent', 'a TransactionEvent': problem details are read by people."""
    text = str(kind)
    article = "an " if text[:1] in ("A", "E", "I", "O", "U") else "a "
    return (article.capitalize() if start else article) + text


def _event_level_rule(event: Mapping[str, Any]) -> str:
    kind = event.get("type")
    if kind in ("ObjectEvent", "TransactionEvent"):
        return (
            f"{_a(kind, start=True)} must say what it is about: add epcList (serialised packs) or quantityList "
            "(lots or products with quantities)."
        )
    if kind in ("AggregationEvent", "AssociationEvent"):
        return (
            f"{_a(kind, start=True)} with action {event.get('action')} must name its children: add childEPCs or "
            "childQuantityList (only DELETE may leave them out, to undo the whole aggregation)."
        )
    if kind == "TransformationEvent":
        return (
            "A TransformationEvent must have inputs (inputEPCList or inputQuantityList) and/or outputs "
            "(outputEPCList or outputQuantityList)."
        )
    return "The event does not satisfy the EPCIS 2.0 schema."


# -- times -----------------------------------------------------------------------------------------------------


def _check_times(event: Mapping[str, Any], found: _Collector, now: datetime, skew: timedelta) -> None:
    offset = event.get("eventTimeZoneOffset")
    if isinstance(offset, str) and not _valid_offset(offset):
        found.add(
            400,
            "Invalid eventTimeZoneOffset",
            f"eventTimeZoneOffset {offset!r} must be ±HH:MM between "
            "-14:00 and +14:00 (e.g. -05:00): the UTC offset where the event happened.",
            "eventTimeZoneOffset",
        )
    _check_instant(event.get("eventTime"), found, now, skew, "eventTime")
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, Mapping):
        _check_instant(declaration.get("declarationTime"), found, now, skew, "errorDeclaration", "declarationTime")


def _valid_offset(offset: str) -> bool:
    match = _OFFSET.fullmatch(offset)
    if match is None:
        return False
    hours, minutes = int(match.group(2)), int(match.group(3))
    return minutes < 60 and (hours < 14 or (hours == 14 and minutes == 0))


def _check_instant(value: object, found: _Collector, now: datetime, skew: timedelta, *path: str) -> None:
    name = "/".join(path)
    if not isinstance(value, str):
        return  # missing or not a string: the schema says so
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        found.add(
            400,
            f"Invalid {path[-1]}",
            f"{name} {value!r} is not an ISO 8601 date-time; send e.g. 2026-11-01T08:00:00.000-05:00.",
            *path,
        )
        return
    if moment.tzinfo is None:
        found.add(
            400,
            f"{path[-1]} without UTC offset",
            f"{name} {value!r} has no UTC offset, so it is not one "
            "instant. Add Z or ±HH:MM, e.g. 2026-11-01T08:00:00.000-05:00.",
            *path,
        )
        return
    if moment > now + skew:
        found.add(
            422,
            f"{path[-1]} in the future",
            f"{name} {value} is later than this server's clock "
            f"({now.isoformat()}) allows, even with {int(skew.total_seconds())} s of clock skew. Events are "
            "recorded after they happen: check the sender's clock and time zone.",
            *path,
        )


# -- identifiers -----------------------------------------------------------------------------------------------


def _identifier_fields(event: Mapping[str, Any]) -> Iterator[tuple[str, tuple[object, ...], object]]:
    """(role, path, value) of every identifier field of the event."""
    for name in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        values = event.get(name)
        if isinstance(values, list):
            for i, value in enumerate(values):
                yield "instance", (name, i), value
    if "parentID" in event:
        yield "instance", ("parentID",), event["parentID"]
    for name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        elements = event.get(name)
        if isinstance(elements, list):
            for i, element in enumerate(elements):
                if isinstance(element, Mapping) and "epcClass" in element:
                    yield "class", (name, i, "epcClass"), element["epcClass"]
    for name in ("readPoint", "bizLocation"):
        place = event.get(name)
        if isinstance(place, Mapping) and "id" in place:
            yield "location", (name, "id"), place["id"]
    for name, key in (("sourceList", "source"), ("destinationList", "destination")):
        entries = event.get(name)
        if isinstance(entries, list):
            for i, entry in enumerate(entries):
                if isinstance(entry, Mapping) and key in entry:
                    role = "location" if entry.get("type") == "location" else "party"
                    yield role, (name, i, key), entry[key]


def _check_identifiers(event: Mapping[str, Any], found: _Collector) -> None:
    seen: dict[str, tuple[object, ...]] = {}
    for role, path, value in _identifier_fields(event):
        if not isinstance(value, str) or not is_gs1_identifier(value):
            continue  # non-GS1 URIs are allowed; the schema checks they are URIs
        try:
            ident = parse(value)
        except IdentifierError as exc:
            found.add(400, "Invalid GS1 identifier", f"{pointer(*path)}: {exc}", *path)
            continue
        wrong = _wrong_kind(role, ident)
        if wrong:
            found.add(400, "Identifier of the wrong kind", f"{pointer(*path)}: {value} {wrong}", *path)
        if role == "instance":
            key = ident.digital_link()
            if key in seen:
                found.add(
                    400,
                    "Identifier listed twice",
                    f"{pointer(*path)}: {value} is the same object as "
                    f"{pointer(*seen[key])} (one written as a URN, one as a Digital Link, or with different hosts). "
                    "List each object once.",
                    *path,
                )
            seen[key] = path


def _wrong_kind(role: str, ident: GS1Identifier) -> str | None:
    if role == "instance" and ident.is_class:
        return (
            "names a class (a lot or a product), not one object: put it in a quantity list as epcClass, "
            "or give the serial number."
        )
    if role == "class" and not ident.is_class:
        return (
            "names one object, not a class: list it in epcList/childEPCs instead, or use the lot class "
            "(urn:epc:class:lgtin:... or /01/<GTIN>/10/<lot>)."
        )
    if role == "location" and ident.ai != "414":
        return "is not a location: use an SGLN (urn:epc:id:sgln:... or https://id.gs1.org/414/<GLN>)."
    if role == "party" and ident.ai not in ("414", "417"):
        return "is not a party: use a PGLN (urn:epc:id:pgln:... or https://id.gs1.org/417/<GLN>) or an SGLN."
    return None


# -- vocabulary ------------------------------------------------------------------------------------------------


def _vocabulary_fields(event: Mapping[str, Any]) -> Iterator[tuple[str, tuple[object, ...], object]]:
    for name in ("bizStep", "disposition"):
        if name in event:
            yield name, (name,), event[name]
    persistent = event.get("persistentDisposition")
    if isinstance(persistent, Mapping):
        for part in ("set", "unset"):
            values = persistent.get(part)
            for i, value in enumerate(values if isinstance(values, list) else []):
                yield "disposition", ("persistentDisposition", part, i), value
    for name, kind in (
        ("bizTransactionList", "bizTransactionType"),
        ("sourceList", "sourceDestType"),
        ("destinationList", "sourceDestType"),
    ):
        entries = event.get(name)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, Mapping) and "type" in entry:
                yield kind, (name, i, "type"), entry["type"]
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, Mapping) and "reason" in declaration:
        yield "errorReason", ("errorDeclaration", "reason"), declaration["reason"]


def _check_vocabulary(event: Mapping[str, Any], found: _Collector) -> None:
    for kind, path, value in _vocabulary_fields(event):
        problem = cbv.vocab_error(value, kind)
        if problem is not None:
            found.add(400, f"Invalid {cbv.vocabulary(kind).name}", f"{pointer(*path)}: {problem}", *path)


# -- ILMD ------------------------------------------------------------------------------------------------------


def _check_ilmd(event: Mapping[str, Any], found: _Collector, context: object) -> None:
    ilmd = event.get("ilmd")
    if ilmd is None:
        return
    kind, action = event.get("type"), event.get("action")
    if not (kind == "TransformationEvent" or (kind == "ObjectEvent" and action == "ADD")):
        found.add(
            400,
            "ILMD not allowed here",
            f"ilmd (lot master data) is only allowed on an ObjectEvent with "
            f"action ADD (commissioning) or on a TransformationEvent; this is {_a(kind)} with action {action}. "
            "Send the lot and expiry when the packs are commissioned, and leave ilmd out here.",
            "ilmd",
        )
        return
    if not isinstance(ilmd, Mapping):
        return  # the schema says it must be an object
    namespaces = prefixes(context)
    for key, value in ilmd.items():
        local = _mda_local_name(key, namespaces)
        if local == "lotNumber" and not (isinstance(value, str) and _LOT.fullmatch(value)):
            found.add(
                400,
                "Invalid lot number",
                f"ilmd {key} {value!r} must be 1 to 20 characters of the GS1 "
                "character set (letters, digits, - . _ ...), exactly as printed after (10) on the pack.",
                "ilmd",
                key,
            )
        elif local == "itemExpirationDate" and not _is_date(value):
            found.add(
                400,
                "Invalid expiry date",
                f"ilmd {key} {value!r} must be a calendar date written "
                "YYYY-MM-DD (e.g. 2028-06-30), the expiry printed after (17) on the pack.",
                "ilmd",
                key,
            )


def _mda_local_name(key: str, namespaces: Mapping[str, str]) -> str | None:
    parts = split_curie(key)
    iri = namespaces[parts[0]] + parts[1] if parts and parts[0] in namespaces else key
    return next((iri[len(ns) :] for ns in _MDA if iri.startswith(ns)), None)


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


# -- quantities and extensions ---------------------------------------------------------------------------------


def _check_quantities(event: Mapping[str, Any], found: _Collector) -> None:
    for name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        elements = event.get(name)
        for i, element in enumerate(elements if isinstance(elements, list) else []):
            quantity = element.get("quantity") if isinstance(element, Mapping) else None
            if isinstance(quantity, (int, float)) and not isinstance(quantity, bool) and quantity <= 0:
                found.add(
                    422,
                    "Quantity not positive",
                    f"{pointer(name, i, 'quantity')} is {quantity}; a quantity "
                    "counts what the event is about and must be greater than 0.",
                    name,
                    i,
                    "quantity",
                )


def _check_extension_prefixes(event: Mapping[str, Any], found: _Collector, context: object) -> None:
    """Extension fields are CURIEs whose prefix the document declares; an undeclared one cannot be expanded.

    Checked at the top of the event and in ILMD, where partners put their own fields. Keys that are absolute
    IRIs (urn:..., https://...) need no prefix.
    """
    if context is None:
        return
    namespaces = prefixes(context)
    ilmd = event.get("ilmd")
    keys: list[tuple[tuple[str, ...], str]] = [((key,), key) for key in event if key not in _STANDARD_FIELDS]
    if isinstance(ilmd, Mapping):
        keys += [(("ilmd", key), key) for key in ilmd]
    for path, key in keys:
        parts = split_curie(key)
        if parts is None or parts[0] in namespaces or parts[0].lower() in _IRI_SCHEMES:
            continue
        found.add(
            400,
            "Undeclared namespace prefix",
            f"The extension field {key!r} uses the prefix {parts[0]!r}, which the document's @context does not "
            f'declare. Add {{"{parts[0]}": "https://your-namespace.example/"}} to @context.',
            *path,
        )


# -- schema errors in words ------------------------------------------------------------------------------------

_QUOTED = re.compile(r"""^["'](.*?)["'] """)


def _schema_problem(error: SchemaError, index: int | None, event: Mapping[str, Any]) -> Problem:
    path = list(error.path)
    where = pointer(*path) or "/"
    value = error.instance
    keyword = error.keyword
    if keyword == "required":
        missing = _first_quoted(error.message) or "a field"
        path.append(missing)
        detail = f"{where}: the required field {missing!r} is missing. Add it."
    elif keyword == "propertyNames":
        name = _first_quoted(error.message) or "?"
        path.append(name)
        detail = (
            f"{pointer(*path)}: {name!r} is not an EPCIS 2.0 field here. Fields of your own must be namespaced, "
            f"e.g. 'example:{name}', with 'example' declared in @context."
        )
    elif keyword == "format" and "date-time" in error.message:
        detail = (
            f"{where}: {value!r} is not an RFC 3339 date-time with a UTC offset; send e.g. "
            "2026-11-01T08:00:00.000-05:00."
        )
    elif keyword == "format":
        detail = (
            f"{where}: {value!r} is not a URI. Identifiers are EPC URNs (urn:epc:id:sgtin:...) or GS1 "
            "Digital Links (https://id.gs1.org/01/...); other values are absolute URIs."
        )
    elif keyword == "enum":
        detail = f"{where}: {error.message}. Use one of the allowed values."
    elif keyword == "type":
        detail = f"{where}: {error.message}. Send the value with that JSON type."
    elif keyword == "additionalProperties":
        detail = f"{where}: {error.message}. Remove the unexpected field."
    elif keyword == "uniqueItems":
        detail = f"{where}: the list has duplicates. List each identifier once."
    elif keyword in ("minItems", "minLength"):
        detail = f"{where}: must not be empty ({error.message})."
    elif keyword == "anyOf":
        detail = f"{where}: {value!r} is not an allowed value here. See the EPCIS 2.0 / CBV 2.0 standard values."
    else:
        detail = f"{where}: {error.message}."
    return Problem(400, VALIDATION, "Schema violation", detail, index, pointer(*path) or None)


def _first_quoted(message: str) -> str | None:
    match = _QUOTED.match(message)
    return match.group(1) if match else None
