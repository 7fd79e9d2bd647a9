"""Reads of the provenance core: EPCIS event queries, visibility rules, custody chains."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from .epcis.cbv import normalize_vocab
from .epcis.identifiers import IdentifierError, canonical
from .models import CaptureJob, CustodyEvent, EventAccess, EventEPC, EventParty, Organization
from .problems import ProblemError

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")

_MATCH_ROLES = {
    "MATCH_epc": ("epc", "child"),
    "MATCH_parentID": ("parent",),
    "MATCH_inputEPC": ("input",),
    "MATCH_outputEPC": ("output",),
    "MATCH_anyEPC": ("epc", "child", "parent", "input", "output"),
    "MATCH_epcClass": ("class", "child_class"),
    "MATCH_inputEPCClass": ("input_class",),
    "MATCH_outputEPCClass": ("output_class",),
    "MATCH_anyEPCClass": ("class", "child_class", "input_class", "output_class"),
}
_TIME_PARAMS = {
    "GE_eventTime": ("event_time", "gte"),
    "LT_eventTime": ("event_time", "lt"),
    "GE_recordTime": ("record_time", "gte"),
    "LT_recordTime": ("record_time", "lt"),
}
_PAGING = {"perPage", "nextPageToken", "orderBy", "orderDirection"}


def _query_problem(detail: str, param: str | None = None) -> ProblemError:
    return ProblemError(
        status_code=400,
        title="Invalid query parameter",
        detail=detail,
        type_="epcisException:QueryParameterException",
        extra={"parameter": param} if param else None,
    )


def _values(raw: str) -> list[str]:
    # EPCIS REST: several values of one parameter are separated by '|' (OR).
    return [v for v in (part.strip() for part in raw.split("|")) if v]


def _canonical_or_problem(value: str, param: str) -> str:
    if value.endswith("*"):
        return value
    try:
        return canonical(value)
    except IdentifierError as exc:
        raise _query_problem(f"{param}: {exc}", param) from exc


def _parse_time(value: str, param: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise _query_problem(
            f"{param} must be an RFC 3339 date-time with a time zone, e.g. 2026-01-31T12:00:00Z; got {value!r}",
            param,
        )
    return parsed


def _epc_filter(role_names: tuple[str, ...], values: list[str], param: str) -> Q:
    exact = [_canonical_or_problem(v, param) for v in values if not v.endswith("*")]
    q = Q(role__in=role_names) & Q(epc__in=exact) if exact else Q(pk__in=[])
    for pattern in (v for v in values if v.endswith("*")):
        prefix = _canonical_or_problem(pattern[:-1].rstrip(".").rstrip("/"), param) if pattern[:-1] else ""
        q |= Q(role__in=role_names, epc__startswith=prefix)
    return q


def events_filter(*, params: Mapping[str, str], queryset: QuerySet[CustodyEvent]) -> QuerySet[CustodyEvent]:
    """Apply the EPCIS 2.0 simple-event-query parameters that tracing needs."""
    qs = queryset
    for name, raw in params.items():
        if name in _PAGING:
            continue
        values = _values(raw)
        if not values:
            raise _query_problem(f"{name} needs a value", name)
        if name == "eventType":
            unknown = [v for v in values if v not in EVENT_TYPES]
            if unknown:
                raise _query_problem(f"eventType must be one of {', '.join(EVENT_TYPES)}; got {unknown[0]!r}", name)
            qs = qs.filter(event_type__in=values)
        elif name in _TIME_PARAMS:
            column, op = _TIME_PARAMS[name]
            qs = qs.filter(**{f"{column}__{op}": _parse_time(raw, name)})
        elif name == "EQ_action":
            qs = qs.filter(action__in=[v.upper() for v in values])
        elif name == "EQ_bizStep":
            qs = qs.filter(biz_step__in=[normalize_vocab(v, "bizStep") for v in values])
        elif name == "EQ_disposition":
            qs = qs.filter(disposition__in=[normalize_vocab(v, "disposition") for v in values])
        elif name == "EQ_readPoint":
            qs = qs.filter(read_point__in=[_canonical_or_problem(v, name) for v in values])
        elif name == "EQ_bizLocation":
            qs = qs.filter(biz_location__in=[_canonical_or_problem(v, name) for v in values])
        elif name == "EQ_eventID":
            qs = qs.filter(event_id__in=values)
        elif name in _MATCH_ROLES:
            seqs = EventEPC.objects.filter(_epc_filter(_MATCH_ROLES[name], values, name)).values("seq")
            qs = qs.filter(seq__in=seqs)
        elif name.startswith(("EQ_source_", "EQ_destination_")):
            side = EventParty.Side.SOURCE if name.startswith("EQ_source_") else EventParty.Side.DESTINATION
            type_ = normalize_vocab(name.split("_", 2)[2], "sourceDestType")
            party_seqs = EventParty.objects.filter(
                side=side, type=type_, value__in=[_canonical_or_problem(v, name) for v in values]
            ).values("seq")
            qs = qs.filter(seq__in=party_seqs)
        elif name == "EXISTS_errorDeclaration":
            qs = qs.filter(is_error_declaration=True)
        else:
            raise ProblemError(
                status_code=400,
                title="Unsupported query parameter",
                detail=(
                    f"The query parameter {name!r} is not supported by this service. Supported: eventType, "
                    "GE_/LT_eventTime, GE_/LT_recordTime, EQ_action, EQ_bizStep, EQ_disposition, EQ_readPoint, "
                    "EQ_bizLocation, EQ_eventID, MATCH_epc, MATCH_parentID, MATCH_inputEPC, MATCH_outputEPC, "
                    "MATCH_anyEPC, MATCH_epcClass, MATCH_inputEPCClass, MATCH_outputEPCClass, MATCH_anyEPCClass, "
                    "EQ_source_{type}, EQ_destination_{type}, EXISTS_errorDeclaration, perPage, nextPageToken."
                ),
                type_="epcisException:QueryParameterException",
                extra={"parameter": name},
            )
    return qs


def events_visible_to(*, organization: Organization | None) -> QuerySet[CustodyEvent]:
    """Events an organization may read: those it is a party to, and every event about an object it has had
    custody of (including the contents of containers it held). None means unrestricted (staff, operators)."""
    qs = CustodyEvent.objects.all()
    if organization is None:
        return qs
    own_seqs = EventAccess.objects.filter(organization=organization).values("seq")
    own_epcs = EventEPC.objects.filter(seq__in=own_seqs).values("epc")
    # Containers it held: their children (packing events list parent and children together).
    container_seqs = EventEPC.objects.filter(role="parent", epc__in=own_epcs).values("seq")
    contained = EventEPC.objects.filter(seq__in=container_seqs, role__in=["child", "child_class"]).values("epc")
    about_seqs = EventEPC.objects.filter(Q(epc__in=own_epcs) | Q(epc__in=contained)).values("seq")
    return qs.filter(Q(seq__in=own_seqs) | Q(seq__in=about_seqs))


@dataclass(frozen=True)
class Page:
    events: list[CustodyEvent]
    next_token: str | None


def _token_fingerprint(params: Mapping[str, str]) -> str:
    relevant = sorted((k, v) for k, v in params.items() if k not in {"nextPageToken", "perPage"})
    return hashlib.sha256(json.dumps(relevant).encode()).hexdigest()[:16]


def encode_page_token(*, after_seq: int, params: Mapping[str, str]) -> str:
    payload = json.dumps({"after": after_seq, "q": _token_fingerprint(params)}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_page_token(token: str, params: Mapping[str, str]) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = int(payload["after"])
        fingerprint = str(payload["q"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise _query_problem(
            "nextPageToken is not a token this service issued; use the value from the previous Link header",
            "nextPageToken",
        ) from None
    if fingerprint != _token_fingerprint(params):
        raise _query_problem(
            "nextPageToken belongs to a query with other parameters; repeat the same parameters with it",
            "nextPageToken",
        )
    return after


def events_page(*, queryset: QuerySet[CustodyEvent], params: Mapping[str, str], max_per_page: int) -> Page:
    """Keyset pagination in ledger order: stable while new events arrive."""
    raw_per_page = params.get("perPage", "30")
    try:
        per_page = int(raw_per_page)
    except ValueError:
        raise _query_problem(f"perPage must be a whole number, got {raw_per_page!r}", "perPage") from None
    if not 1 <= per_page <= max_per_page:
        raise _query_problem(f"perPage must be between 1 and {max_per_page}", "perPage")
    qs = queryset.order_by("seq")
    token = params.get("nextPageToken")
    if token:
        qs = qs.filter(seq__gt=decode_page_token(token, params))
    rows = list(qs[: per_page + 1])
    has_more = len(rows) > per_page
    rows = rows[:per_page]
    next_token = encode_page_token(after_seq=rows[-1].seq, params=params) if has_more and rows else None
    return Page(events=rows, next_token=next_token)


def event_by_id(*, event_id: str, organization: Organization | None) -> CustodyEvent | None:
    return events_visible_to(organization=organization).filter(event_id=event_id).order_by("seq").first()


def capture_job_get(*, job_id: str, organization: Organization | None) -> CaptureJob | None:
    qs = CaptureJob.objects.all()
    if organization is not None:
        qs = qs.filter(organization=organization)
    try:
        return qs.filter(id=job_id).first()
    except (ValueError, TypeError):
        return None


def lot_custody_chain(*, gtin: str, lot: str) -> QuerySet[CustodyEvent]:
    """Every event about a lot: its class identifier, its serials and the containers that held them."""
    lot_class = canonical(f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}")
    serial_seqs_q = EventEPC.objects.filter(epc=lot_class).values("seq")
    serials = EventEPC.objects.filter(seq__in=serial_seqs_q, epc__startswith=f"https://id.gs1.org/01/{gtin}/21/")
    epcs = set(serials.values_list("epc", flat=True))
    from .models import SerializedPackage

    epcs.update(
        SerializedPackage.objects.filter(lot__product__gtin=gtin, lot__lot_number=lot).values_list("sgtin", flat=True)
    )
    epcs.add(lot_class)
    parents = EventEPC.objects.filter(role="child", epc__in=epcs).values("seq")
    containers = set(EventEPC.objects.filter(seq__in=parents, role="parent").values_list("epc", flat=True))
    return CustodyEvent.objects.filter(seq__in=EventEPC.objects.filter(epc__in=epcs | containers).values("seq"))


def as_mapping(query: Mapping[str, Any]) -> dict[str, str]:
    """QueryDict → plain dict; a repeated parameter is joined with '|' (OR), as EPCIS allows."""
    getlist = getattr(query, "getlist", None)
    if getlist is None:
        return {k: str(v) for k, v in query.items()}
    return {k: "|".join(getlist(k)) for k in query}
