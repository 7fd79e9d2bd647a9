"""Writes of the provenance core: partners and master data, and the capture of custody events.

Capture is the one way into the ledger. A document is validated completely before anything is
written; the accepted events are then sequenced and appended under the single sequencer lock
(LedgerHead), so sequence numbers are gap-free and the Merkle tree grows in the same order.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Field
from django.utils import timezone

from .bulk import insert_rows
from .epcis.eventhash import event_hash
from .epcis.identifiers import IdentifierError, canonical, has_valid_check_digit
from .epcis.normalize import NormalizedEvent, normalize_event
from .epcis.privacy import patient_data_problems
from .epcis.validation import Problem, validate_document
from .ledger.entry import event_sha256
from .models import (
    CaptureDocument,
    CaptureJob,
    CompanyPrefix,
    CustodyEvent,
    EventAccess,
    EventEPC,
    EventKey,
    EventParty,
    LedgerHead,
    Location,
    Organization,
    PartnerApiKey,
    Product,
)
from .problems import ProblemError

logger = logging.getLogger(__name__)

# Statuses in the order a refusal reports them when a document has problems of several kinds.
_STATUS_PRIORITY = (413, 400, 422, 403, 409)


# --------------------------------------------------------------------------------------------
# Partners and master data
# --------------------------------------------------------------------------------------------


def _check_gln(gln: str, what: str) -> None:
    if len(gln) != 13 or not has_valid_check_digit(gln):
        raise ProblemError(
            status_code=400,
            title=f"Invalid {what}",
            detail=f"{what} {gln!r} is not a 13-digit GLN with a valid GS1 check digit; correct it and retry.",
        )


@transaction.atomic
def organization_create(
    *,
    name: str,
    gln: str,
    kind: str = Organization.Kind.WHOLESALER,
    company_prefixes: Sequence[str] = (),
    licence_number: str = "",
    licence_state: str = "",
    licence_status: str = Organization.LicenceStatus.ACTIVE,
    authorized_trading_partner: bool = True,
    is_operator: bool = False,
) -> Organization:
    """Create a trading partner, or return the existing one with that GLN (idempotent)."""
    _check_gln(gln, "party GLN")
    existing = Organization.objects.filter(gln=gln).first()
    if existing is not None:
        return existing
    organization = Organization.objects.create(
        name=name,
        gln=gln,
        kind=Organization.Kind.OPERATOR if is_operator and kind == Organization.Kind.WHOLESALER else kind,
        licence_number=licence_number,
        licence_state=licence_state,
        licence_status=licence_status,
        authorized_trading_partner=authorized_trading_partner,
        is_operator=is_operator,
    )
    prefixes = list(company_prefixes) or [_guess_prefix(gln)]
    for prefix in prefixes:
        if not prefix.isdigit() or not 6 <= len(prefix) <= 12:
            raise ProblemError(
                status_code=400,
                title="Invalid company prefix",
                detail=f"Company prefix {prefix!r} must be 6 to 12 digits.",
            )
        CompanyPrefix.objects.get_or_create(prefix=prefix, defaults={"organization": organization})
    return organization


def _guess_prefix(gln: str) -> str:
    # Without a registered prefix, assume the common 7-digit US prefix length.
    return gln[:7]


@transaction.atomic
def api_key_issue(
    *,
    organization: Organization,
    name: str,
    can_capture: bool = True,
    can_query: bool = True,
    expires_at: datetime | None = None,
) -> tuple[PartnerApiKey, str]:
    """Issue a key; the plain key is returned once and only its hash is stored."""
    if expires_at is None:
        expires_at = timezone.now() + timedelta(days=365)
    created, key = PartnerApiKey.objects.create_key(
        name=name,
        organization=organization,
        can_capture=can_capture,
        can_query=can_query,
        expiry_date=expires_at,
    )
    return cast(PartnerApiKey, created), key


@transaction.atomic
def api_key_revoke(*, api_key: PartnerApiKey) -> PartnerApiKey:
    api_key.revoked = True
    api_key.save(update_fields=["revoked"])
    return api_key


@transaction.atomic
def location_create(
    *,
    sgln: str,
    organization: Organization | None,
    name: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    county_fips: str = "",
) -> Location:
    """Create a location (or return the existing one); the SGLN is stored in canonical form."""
    try:
        canon = canonical(sgln)
    except IdentifierError as exc:
        raise ProblemError(status_code=400, title="Invalid SGLN", detail=str(exc)) from exc
    gln, _, extension = _split_sgln(canon)
    location, _created = Location.objects.get_or_create(
        sgln=canon,
        defaults={
            "gln": gln,
            "extension": extension,
            "organization": organization,
            "name": name,
            "latitude": latitude,
            "longitude": longitude,
            "county_fips": county_fips,
        },
    )
    return location


def _split_sgln(canon: str) -> tuple[str, str, str]:
    # https://id.gs1.org/414/<gln>[/254/<ext>]
    parts = canon.split("/")
    gln = parts[parts.index("414") + 1] if "414" in parts else parts[-1]
    extension = parts[parts.index("254") + 1] if "254" in parts else ""
    return gln, "", extension


@transaction.atomic
def product_create(*, gtin: str, ndc: str = "", name: str = "", manufacturer: Organization | None = None) -> Product:
    if len(gtin) != 14 or not has_valid_check_digit(gtin):
        raise ProblemError(
            status_code=400,
            title="Invalid GTIN",
            detail=f"GTIN {gtin!r} must be 14 digits with a valid GS1 check digit.",
        )
    product, _ = Product.objects.get_or_create(
        gtin=gtin, defaults={"ndc": ndc, "name": name, "manufacturer": manufacturer}
    )
    return product


# --------------------------------------------------------------------------------------------
# Capture
# --------------------------------------------------------------------------------------------


@dataclass
class PreparedEvent:
    index: int
    body: dict[str, Any]
    normalized: NormalizedEvent
    event_id: str
    event_hash: str
    sha256: str
    party_org_ids: set[int] = field(default_factory=set)


class CaptureRefused(ProblemError):
    """A document refused as a whole (rollback) or with nothing capturable; the job records why."""

    def __init__(self, *, job: CaptureJob, status_code: int, problems: list[dict[str, Any]]) -> None:
        first = problems[0]
        where = []
        if first.get("eventIndex") is not None:
            where.append(f"event {first['eventIndex']}")
        if first.get("field"):
            where.append(f"field {first['field']}")
        location = f" ({', '.join(where)})" if where else ""
        more = f" ({len(problems) - 1} more problems listed in 'errors')" if len(problems) > 1 else ""
        super().__init__(
            status_code=status_code,
            title=first.get("title") or "The document was refused",
            detail=f"{first['detail']}{location}{more}. Nothing from this document was recorded.",
            errors=problems,
            type_=first.get("type"),
            extra={"captureID": str(job.id)},
        )
        self.job = job


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return problem.to_dict()


def _party_problem(index: int, detail: str) -> dict[str, Any]:
    return {
        "type": "epcisException:SecurityException",
        "title": "Not a party to this event",
        "status": 403,
        "detail": detail,
        "eventIndex": index,
        "field": None,
    }


def _duplicate_problem(index: int, key: str, seq: int | None, kind: str) -> dict[str, Any]:
    where = f"already recorded as ledger entry {seq}" if seq is not None else "repeated earlier in this document"
    return {
        "type": "epcisException:ResourceAlreadyExistsException",
        "title": "Duplicate event",
        "status": 409,
        "detail": (
            f"An event with this {kind} ({key}) is {where}. To correct a recorded event, send an event "
            "with an errorDeclaration instead of sending it again."
        ),
        "eventIndex": index,
        "field": "/eventID" if kind == "eventID" else None,
    }


class PartyResolver:
    """Maps location/party identifiers of events to organizations, cached for one capture."""

    def __init__(self) -> None:
        self._by_gln: dict[str, int | None] = {}
        self._prefixes: list[tuple[str, int]] | None = None

    def _prefix_table(self) -> list[tuple[str, int]]:
        if self._prefixes is None:
            rows = CompanyPrefix.objects.values_list("prefix", "organization_id")
            self._prefixes = sorted(rows, key=lambda r: -len(r[0]))
        return self._prefixes

    def organization_id_for_gln(self, gln: str) -> int | None:
        if gln in self._by_gln:
            return self._by_gln[gln]
        # No cache across captures: this decides authorization, and owners of locations change.
        org_id = self._lookup(gln)
        self._by_gln[gln] = org_id
        return org_id

    def prefetch(self, glns: Iterable[str]) -> None:
        """Resolve many GLNs at once (two queries and the prefix table) instead of one or two queries each."""
        wanted = {g for g in glns if g and g not in self._by_gln}
        if not wanted:
            return
        found: dict[str, int] = dict(Organization.objects.filter(gln__in=wanted).values_list("gln", "id"))
        for gln, owner in Location.objects.filter(
            gln__in=wanted - found.keys(), organization__isnull=False
        ).values_list("gln", "organization_id"):
            if owner is not None:
                found.setdefault(gln, owner)
        for gln in wanted:
            resolved = found.get(gln)
            if resolved is None:
                resolved = next((c for prefix, c in self._prefix_table() if gln.startswith(prefix)), None)
            self._by_gln[gln] = resolved

    def prefetch_events(self, events: Iterable[NormalizedEvent]) -> None:
        glns: set[str] = set()
        for n in events:
            for identifier in (
                n.read_point,
                n.biz_location,
                *(v for _t, v in n.sources),
                *(v for _t, v in n.destinations),
            ):
                gln = _gln_in(identifier)
                if gln:
                    glns.add(gln)
        self.prefetch(glns)

    def _lookup(self, gln: str) -> int | None:
        org_id = (
            Organization.objects.filter(gln=gln).values_list("id", flat=True).first()
            or Location.objects.filter(gln=gln, organization__isnull=False)
            .values_list("organization_id", flat=True)
            .first()
        )
        if org_id is None:
            for prefix, candidate in self._prefix_table():
                if gln.startswith(prefix):
                    org_id = candidate
                    break
        return org_id

    def organizations_of(self, normalized: NormalizedEvent) -> set[int]:
        """Organizations that are a party to an event: its places and its source/destination parties."""
        identifiers = [normalized.read_point, normalized.biz_location]
        identifiers += [value for _type, value in normalized.sources]
        identifiers += [value for _type, value in normalized.destinations]
        found: set[int] = set()
        for identifier in identifiers:
            gln = _gln_in(identifier)
            if gln:
                org_id = self.organization_id_for_gln(gln)
                if org_id is not None:
                    found.add(org_id)
        return found


def _gln_in(identifier: str | None) -> str | None:
    if not identifier or not identifier.startswith("https://id.gs1.org/"):
        return None
    parts = identifier.split("/")
    for ai in ("414", "417"):
        if ai in parts:
            i = parts.index(ai)
            if i + 1 < len(parts):
                return parts[i + 1]
    return None


def _prepare(
    document: dict[str, Any], events: list[tuple[int, Any]], *, organization: Organization
) -> tuple[list[PreparedEvent], list[dict[str, Any]]]:
    """Normalise, hash and authorise each event; returns what can be recorded and the problems."""
    context = document.get("@context")
    resolver = PartyResolver()
    prepared: list[PreparedEvent] = []
    problems: list[dict[str, Any]] = []
    readable: list[tuple[int, Any, NormalizedEvent]] = []
    for index, event in events:
        privacy = patient_data_problems(event, index=index)
        if privacy:
            problems.extend(_problem_dict(p) for p in privacy)
            continue
        try:
            readable.append((index, event, normalize_event(event, context)))
        except (IdentifierError, ValueError, KeyError, TypeError) as exc:
            problems.append(
                {
                    "type": "epcisException:ValidationException",
                    "title": "The event cannot be read",
                    "status": 400,
                    "detail": str(exc),
                    "eventIndex": index,
                    "field": None,
                }
            )
    resolver.prefetch_events(n for _i, _e, n in readable)
    for index, event, normalized in readable:
        parties = resolver.organizations_of(normalized)
        if not organization.is_operator and organization.pk not in parties:
            problems.append(
                _party_problem(
                    index,
                    f"Your organization ({organization.gln}) is not a party to this event: its readPoint, "
                    "bizLocation and source/destination parties belong to others. Capture events at your own "
                    "locations or where you are the owning or possessing party, or use an operator key.",
                )
            )
            continue
        hashed = event_hash(event, context)
        # A retraction (errorDeclaration) repeats the eventID of the event it retracts (EPCIS 2.0 §7.4.1.2),
        # and the CBV hash leaves the declaration out, so both share an id; EventKey tells them apart.
        event_id = normalized.event_id or hashed
        prepared.append(
            PreparedEvent(
                index=index,
                body=event,
                normalized=normalized,
                event_id=event_id,
                event_hash=hashed,
                sha256=event_sha256(event),
                party_org_ids=parties | {organization.pk},
            )
        )
    problems.sort(key=_event_index)  # stable: in document order, as the events were read
    return prepared, problems


def _event_index(problem: dict[str, Any]) -> int:
    index = problem.get("eventIndex")
    return index if isinstance(index, int) else -1


def retraction_key(p: PreparedEvent) -> str:
    """The unique key of a retraction: its eventID (the retracted event's) and its declaration time."""
    declared = p.normalized.error_declaration
    assert declared is not None
    return f"{p.event_id}#errorDeclaration@{declared.declaration_time.isoformat()}"


def _identity(p: PreparedEvent) -> str:
    return retraction_key(p) if p.normalized.error_declaration is not None else p.event_id


def _duplicates(prepared: list[PreparedEvent]) -> tuple[list[PreparedEvent], list[dict[str, Any]]]:
    """Split off events whose eventID, or whose event hash (errorDeclarations aside), is known."""
    keys = {_identity(p) for p in prepared} | {p.event_hash for p in prepared}
    known = dict(EventKey.objects.filter(key__in=keys).values_list("key", "seq"))
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    fresh: list[PreparedEvent] = []
    problems: list[dict[str, Any]] = []
    for p in prepared:
        correcting = p.normalized.error_declaration is not None
        identity = _identity(p)
        if identity in known:
            problems.append(_duplicate_problem(p.index, p.event_id, known[identity], "eventID"))
        elif identity in seen_ids:
            problems.append(_duplicate_problem(p.index, p.event_id, None, "eventID"))
        elif not correcting and (p.event_hash in known or p.event_hash in seen_hashes):
            problems.append(_duplicate_problem(p.index, p.event_hash, known.get(p.event_hash), "event hash"))
        else:
            fresh.append(p)
            seen_ids.add(identity)
            if not correcting:
                seen_hashes.add(p.event_hash)
    return fresh, problems


def _refusal_status(problems: Iterable[dict[str, Any]]) -> int:
    statuses = {int(p["status"]) for p in problems}
    for status in _STATUS_PRIORITY:
        if status in statuses:
            return status
    return 400


def custody_events_capture(
    *,
    document: dict[str, Any],
    organization: Organization,
    api_key: PartnerApiKey | None = None,
    behaviour: str = CaptureJob.Behaviour.ROLLBACK,
    raw: bytes | None = None,
    now: datetime | None = None,
) -> CaptureJob:
    """Validate an EPCIS document and record its events in the ledger.

    rollback: all or nothing. proceed: record every event that passes, report the others.
    Resending an identical document returns the job that recorded it and records nothing twice.
    Raises CaptureRefused when nothing is recorded because of problems.
    """
    now = now or timezone.now()
    if raw is None:
        raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    document_sha256 = hashlib.sha256(raw).hexdigest()

    replay = (
        CaptureJob.objects.filter(organization=organization, document_sha256=document_sha256, success=True)
        .order_by("created_at")
        .first()
    )
    if replay is not None:
        replay.replayed = True  # type: ignore[attr-defined]
        return replay

    job = CaptureJob(
        organization=organization,
        api_key_id=str(api_key.pk) if api_key else "",
        behaviour=behaviour,
        document_sha256=document_sha256,
        created_at=now,
    )
    schema_problems = validate_document(
        document,
        now=now,
        max_future_skew=timedelta(seconds=settings.EPCIS_MAX_FUTURE_SKEW_SECONDS),
        max_events=settings.EPCIS_CAPTURE_LIMIT,
    )
    problems = [_problem_dict(p) for p in schema_problems]
    # A problem without an event index concerns the document itself: no event can be read safely.
    events = _event_list(document) if not any(p["eventIndex"] is None for p in problems) else []
    job.event_count = len(events)
    bad_indexes = {p["eventIndex"] for p in problems}
    candidates = [(i, e) for i, e in enumerate(events) if i not in bad_indexes]
    prepared, more = _prepare(document, candidates, organization=organization)
    problems.extend(more)

    refuse_all = bool(problems) and behaviour == CaptureJob.Behaviour.ROLLBACK
    recorded: list[CustodyEvent] = []
    if not refuse_all and prepared:
        with transaction.atomic():
            head = _lock_head()
            # Checked again under the sequencer lock: a concurrent capture may have just recorded them.
            fresh, dup_problems = _duplicates(prepared)
            problems.extend(dup_problems)
            if dup_problems and behaviour == CaptureJob.Behaviour.ROLLBACK:
                refuse_all = True
            elif fresh:
                recorded = _append(
                    head=head,
                    prepared=fresh,
                    document=document,
                    raw=raw,
                    document_sha256=document_sha256,
                    organization=organization,
                    api_key=api_key,
                    job=job,
                    now=now,
                )
            _finish_job(job, problems=problems, recorded=recorded)
    else:
        _finish_job(job, problems=problems, recorded=[])

    if not recorded:
        problems.sort(key=lambda p: (p["eventIndex"] is not None, p["eventIndex"] or 0))
        if not problems:
            problems = [
                {
                    "type": "epcisException:ValidationException",
                    "title": "No events",
                    "status": 400,
                    "detail": "The document's eventList is empty; send at least one event",
                    "eventIndex": None,
                    "field": "/epcisBody/eventList",
                }
            ]
        with transaction.atomic():
            job.save()
        raise CaptureRefused(job=job, status_code=_refusal_status(problems), problems=problems)

    transaction.on_commit(lambda: _after_capture())
    return job


def _event_list(document: dict[str, Any]) -> list[Any]:
    body = document.get("epcisBody") or {}
    if "eventList" in body:
        return list(body["eventList"])
    results = (body.get("queryResults") or {}).get("resultsBody") or {}
    return list(results.get("eventList") or [])


def _finish_job(job: CaptureJob, *, problems: list[dict[str, Any]], recorded: list[CustodyEvent]) -> None:
    job.running = False
    job.finished_at = timezone.now()
    job.errors = problems
    job.recorded_count = len(recorded)
    job.success = bool(recorded) and (not problems or job.behaviour == CaptureJob.Behaviour.PROCEED)
    if recorded:
        job.first_seq = recorded[0].seq
        job.last_seq = recorded[-1].seq
        job.save()


def _lock_head() -> LedgerHead:
    try:
        return LedgerHead.objects.select_for_update().get(id=1)
    except LedgerHead.DoesNotExist:
        LedgerHead.objects.bulk_create([LedgerHead(id=1)], ignore_conflicts=True)
        return LedgerHead.objects.select_for_update().get(id=1)


def _append(
    *,
    head: LedgerHead,
    prepared: list[PreparedEvent],
    document: dict[str, Any],
    raw: bytes,
    document_sha256: str,
    organization: Organization,
    api_key: PartnerApiKey | None,
    job: CaptureJob,
    now: datetime,
) -> list[CustodyEvent]:
    """Append under the sequencer lock: rows, keys, index tables, access, Merkle leaves, head."""
    from .ledger_store import ledger_integrate

    CaptureDocument.objects.bulk_create(
        [CaptureDocument(sha256=document_sha256, body=raw, size=len(raw), received_at=now)], ignore_conflicts=True
    )
    context = document.get("@context") or []
    # Sequence numbers start at 0 and equal the entry's Merkle leaf index (docs/ledger-format.md).
    first = head.tree_size
    rows: list[CustodyEvent] = []
    event_rows: list[tuple[Any, ...]] = []
    keys: list[tuple[Any, ...]] = []
    epcs: list[tuple[Any, ...]] = []
    parties: list[tuple[Any, ...]] = []
    access: list[tuple[Any, ...]] = []
    api_key_id = str(api_key.pk) if api_key else ""
    contexts = context if isinstance(context, list) else [context]
    for offset, p in enumerate(prepared):
        seq = first + offset
        n = p.normalized
        event = CustodyEvent(
            seq=seq,
            record_time=now,
            event_id=p.event_id,
            event_hash=p.event_hash,
            event_type=n.event_type,
            action=n.action or "",
            event_time=n.event_time,
            event_time_zone_offset=n.event_time_zone_offset,
            biz_step=n.biz_step or "",
            disposition=n.disposition or "",
            read_point=n.read_point or "",
            biz_location=n.biz_location or "",
            is_error_declaration=n.error_declaration is not None,
            submitter=organization,
            api_key_id=api_key_id,
            capture_job_id=job.id,
            document_sha256=document_sha256,
            document_index=p.index,
            body=p.body,
            body_sha256=p.sha256,
            context=contexts,
        )
        rows.append(event)
        event_rows.append(tuple(getattr(event, attname) for attname in _EVENT_ATTNAMES))
        if n.error_declaration is not None:
            keys.append((retraction_key(p), EventKey.Kind.RETRACTION, seq))
        else:
            keys.append((p.event_id, EventKey.Kind.EVENT_ID, seq))
        if p.event_hash != p.event_id and n.error_declaration is None:
            keys.append((p.event_hash, EventKey.Kind.HASH, seq))
        for role, value in n.epcs:
            epcs.append((seq, role, value, None, ""))
        for role, value, quantity, uom in n.quantities:
            epcs.append((seq, role, value, quantity, uom or ""))
        for type_, value in n.sources:
            parties.append((seq, EventParty.Side.SOURCE, type_, value))
        for type_, value in n.destinations:
            parties.append((seq, EventParty.Side.DESTINATION, type_, value))
        for org_id in p.party_org_ids:
            access.append((seq, org_id))
    insert_rows(CustodyEvent, _EVENT_FIELDS, event_rows)
    insert_rows(EventKey, ("key", "kind", "seq"), keys)
    insert_rows(EventEPC, ("seq", "role", "epc", "quantity", "uom"), epcs)
    insert_rows(EventParty, ("seq", "side", "type", "value"), parties)
    insert_rows(EventAccess, ("seq", "organization"), access)
    ledger_integrate(rows=rows, submitter_gln=organization.gln)
    head.tree_size = head.tree_size + len(rows)
    head.save(update_fields=["tree_size", "updated_at"])
    return rows


_EVENT_FIELDS = (
    "seq",
    "record_time",
    "event_id",
    "event_hash",
    "event_type",
    "action",
    "event_time",
    "event_time_zone_offset",
    "biz_step",
    "disposition",
    "read_point",
    "biz_location",
    "is_error_declaration",
    "submitter",
    "api_key_id",
    "capture_job_id",
    "document_sha256",
    "document_index",
    "body",
    "body_sha256",
    "context",
)
_EVENT_ATTNAMES = tuple(cast(Field, CustodyEvent._meta.get_field(name)).attname for name in _EVENT_FIELDS)


_deferred = contextvars.ContextVar("provenance_capture_kicks_deferred", default=False)


@contextlib.contextmanager
def derived_work_deferred() -> Iterator[None]:
    """For bulk loads: no doorbell per capture, one at the end (the watermark makes that equivalent)."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)
    _after_capture()


def _after_capture() -> None:
    """Ring the doorbell for derived work; the watermark makes a lost message cost only latency."""
    if _deferred.get():
        return
    try:
        from .tasks import derive_from_ledger

        derive_from_ledger.delay()
    except Exception:  # the broker being down must never fail a capture that has committed
        logger.warning("could not enqueue derive_from_ledger; the beat sweep will catch up", exc_info=True)
    from .signals import capture_committed

    for receiver, result in capture_committed.send_robust(sender=custody_events_capture):
        if isinstance(result, Exception):
            logger.warning("capture_committed receiver %r failed: %s", receiver, result, exc_info=result)
