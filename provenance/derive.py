"""Derived state from the ledger: lots, serialized packages, logistic units and transfers.

Everything here can be rebuilt from the ledger: it is driven by the watermark "derive", processes
entries in sequence order, and is idempotent per entry (the watermark and the rows move in one
transaction), so a crashed worker or a lost message costs latency, never a transfer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import Count, QuerySet

from .bulk import update_rows
from .epcis.identifiers import gln_of, gtin_of, lot_of, ndc_from_gtin, serial_of
from .epcis.normalize import NormalizedEvent, normalize_event
from .models import (
    CustodyEvent,
    EventEPC,
    LogisticUnit,
    Lot,
    Organization,
    Product,
    SerializedPackage,
    Transfer,
    Watermark,
)
from .services import PartyResolver

logger = logging.getLogger(__name__)

WATERMARK = "derive"
BATCH = 2000

_STATE_BY_STEP = {
    "commissioning": "active",
    "shipping": "in_transit",
    "receiving": "received",
    "accepting": "received",
    "dispensing": "dispensed",
    "decommissioning": "decommissioned",
    "destroying": "destroyed",
    "retail_selling": "dispensed",
}
_PARTY_TYPES = ("owning_party", "possessing_party", "location")


@dataclass
class _Ctx:
    resolver: PartyResolver
    packages: dict[str, SerializedPackage]
    units: dict[str, LogisticUnit]
    lots: dict[tuple[str, str], Lot]
    products: dict[str, Product]
    children: dict[str, set[str]]

    def set_parent(self, child: str, old: str, new: str) -> None:
        if old:
            self.children.get(old, set()).discard(child)
        if new:
            self.children.setdefault(new, set()).add(child)


def ledger_derive(*, limit: int | None = None) -> int:
    """Process ledger entries after the watermark, in batches; returns how many were processed."""
    done = 0
    while limit is None or done < limit:
        processed = _derive_batch()
        if not processed:
            break
        done += processed
    return done


@transaction.atomic
def _derive_batch() -> int:
    mark, _ = Watermark.objects.select_for_update().get_or_create(name=WATERMARK)
    events = list(CustodyEvent.objects.filter(seq__gte=mark.seq).order_by("seq")[:BATCH])
    if not events:
        return 0
    ctx = _Ctx(resolver=PartyResolver(), packages={}, units={}, lots={}, products={}, children={})
    normalized = [(e, normalize_event(e.body, e.context)) for e in events]
    _prefetch(ctx, normalized)
    ctx.resolver.prefetch(_glns(normalized))
    for event, n in normalized:
        _apply(ctx, event, n)
    SerializedPackage.objects.bulk_create([p for p in ctx.packages.values() if p.pk is None], batch_size=2000)
    update_rows(
        SerializedPackage,
        [p for p in ctx.packages.values() if p.pk is not None],
        ["parent", "state", "last_seq", "lot"],
    )
    LogisticUnit.objects.bulk_create([u for u in ctx.units.values() if u.pk is None], batch_size=2000)
    update_rows(LogisticUnit, [u for u in ctx.units.values() if u.pk is not None], ["parent", "last_seq"])
    mark.seq = events[-1].seq + 1
    mark.save(update_fields=["seq", "updated_at"])
    return len(events)


def _prefetch(ctx: _Ctx, normalized: list[tuple[CustodyEvent, NormalizedEvent]]) -> None:
    sgtins: set[str] = set()
    ssccs: set[str] = set()
    for _event, n in normalized:
        for _role, epc in n.epcs:
            if "/21/" in epc:
                sgtins.add(epc)
            elif "/00/" in epc:
                ssccs.add(epc)
    for package in SerializedPackage.objects.filter(sgtin__in=sgtins).select_related("lot__product"):
        ctx.packages[package.sgtin] = package
    for unit in LogisticUnit.objects.filter(sscc__in=ssccs):
        ctx.units[unit.sscc] = unit
    # Containers' contents (pallet > case > pack) are needed to expand shipments of cases and pallets.
    frontier = set(ssccs)
    for _depth in range(4):
        if not frontier:
            break
        for package in SerializedPackage.objects.filter(parent__in=frontier).select_related("lot__product"):
            ctx.packages.setdefault(package.sgtin, package)
        inner = list(LogisticUnit.objects.filter(parent__in=frontier))
        for unit in inner:
            ctx.units.setdefault(unit.sscc, unit)
        frontier = {u.sscc for u in inner}
    for package in ctx.packages.values():
        if package.parent:
            ctx.children.setdefault(package.parent, set()).add(package.sgtin)
    for unit in ctx.units.values():
        if unit.parent:
            ctx.children.setdefault(unit.parent, set()).add(unit.sscc)


def _product(ctx: _Ctx, gtin: str) -> Product:
    product = ctx.products.get(gtin)
    if product is None:
        product, _ = Product.objects.get_or_create(gtin=gtin, defaults={"ndc": _ndc(gtin)})
        ctx.products[gtin] = product
    return product


def _ndc(gtin: str) -> str:
    try:
        return ndc_from_gtin(gtin) or ""
    except ValueError:
        return ""


def _lot(ctx: _Ctx, gtin: str, lot_number: str, *, expiry: date | None = None, seq: int | None = None) -> Lot:
    key = (gtin, lot_number)
    lot = ctx.lots.get(key)
    if lot is None:
        lot, created = Lot.objects.get_or_create(
            product=_product(ctx, gtin),
            lot_number=lot_number,
            defaults={"expiry": expiry, "commissioned_seq": seq},
        )
        ctx.lots[key] = lot
        if created:
            return lot
    if seq is not None and lot.commissioned_seq is None:
        lot.commissioned_seq = seq
        lot.expiry = lot.expiry or expiry
        lot.save(update_fields=["commissioned_seq", "expiry"])
    return lot


def _package(ctx: _Ctx, sgtin: str, seq: int) -> SerializedPackage:
    package = ctx.packages.get(sgtin)
    if package is None:
        package = SerializedPackage(
            sgtin=sgtin, gtin=gtin_of(sgtin) or "", serial=serial_of(sgtin) or "", first_seq=seq, last_seq=seq
        )
        ctx.packages[sgtin] = package
    return package


def _unit(ctx: _Ctx, sscc: str, seq: int) -> LogisticUnit:
    unit = ctx.units.get(sscc)
    if unit is None:
        unit = LogisticUnit(sscc=sscc, first_seq=seq, last_seq=seq)
        ctx.units[sscc] = unit
    return unit


def _apply(ctx: _Ctx, event: CustodyEvent, n: NormalizedEvent) -> None:
    if n.error_declaration is not None:
        return  # a retraction changes the record, not the goods; models read it from the ledger
    seq = event.seq
    step = n.biz_step or ""
    if step == "commissioning" or (n.event_type == "ObjectEvent" and n.action == "ADD" and n.lot_number):
        _commission(ctx, n, seq)
    if n.event_type == "TransformationEvent":
        _commission(ctx, n, seq)
    if n.event_type == "AggregationEvent" and n.action in ("ADD", "DELETE"):
        _aggregate(ctx, n, seq)
    state = _STATE_BY_STEP.get(step)
    if state:
        for sgtin in _contents(ctx, [epc for role, epc in n.epcs if role in ("epc", "parent", "child")]):
            package = _package(ctx, sgtin, seq)
            package.state = state
            package.last_seq = seq
    if step == "shipping":
        _ship(ctx, event, n)
    elif step in ("receiving", "accepting"):
        _receive(ctx, event, n)


def _commission(ctx: _Ctx, n: NormalizedEvent, seq: int) -> None:
    expiry = n.expiry_date
    roles = ("epc", "output") if n.event_type == "TransformationEvent" else ("epc",)
    for role, epc in n.epcs:
        if role not in roles or "/21/" not in epc:
            continue
        gtin = gtin_of(epc) or ""
        package = _package(ctx, epc, seq)
        package.state = package.state or "active"
        if n.lot_number and gtin:
            package.lot = _lot(ctx, gtin, n.lot_number, expiry=expiry, seq=seq)
    for role, epc_class, _qty, _uom in n.quantities:
        if role in ("class", "output_class") and "/10/" in epc_class and n.action in ("ADD", None, ""):
            class_gtin, lot_number = gtin_of(epc_class), lot_of(epc_class)
            if class_gtin and lot_number:
                _lot(ctx, class_gtin, lot_number, expiry=expiry if lot_number == n.lot_number else None, seq=seq)


def _aggregate(ctx: _Ctx, n: NormalizedEvent, seq: int) -> None:
    parent = next((epc for role, epc in n.epcs if role == "parent"), "")
    if parent and "/00/" in parent:
        _unit(ctx, parent, seq).last_seq = seq
    for role, epc in n.epcs:
        if role != "child":
            continue
        value = parent if n.action == "ADD" else ""
        if "/21/" in epc:
            package = _package(ctx, epc, seq)
            ctx.set_parent(epc, package.parent, value)
            package.parent = value
            package.last_seq = seq
        elif "/00/" in epc:
            unit = _unit(ctx, epc, seq)
            ctx.set_parent(epc, unit.parent, value)
            unit.parent = value
            unit.last_seq = seq


def _contents(ctx: _Ctx, epcs: list[str]) -> list[str]:
    """Serials named directly or held (at any depth) in the named containers, as of now in the ledger."""
    out: list[str] = []
    stack = list(epcs)
    seen: set[str] = set()
    while stack:
        epc = stack.pop()
        if epc in seen:
            continue
        seen.add(epc)
        if "/21/" in epc:
            out.append(epc)
        stack.extend(ctx.children.get(epc, ()))
    return out


def _lot_quantities(ctx: _Ctx, n: NormalizedEvent, seq: int) -> dict[tuple[str, str], float]:
    """Quantity per (GTIN, lot) moved by an event: serials (direct or contained) and lot-class quantities."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for sgtin in _contents(ctx, [epc for role, epc in n.epcs if role in ("epc", "parent", "child")]):
        package = ctx.packages.get(sgtin)
        gtin = gtin_of(sgtin) or ""
        lot_number = package.lot.lot_number if package is not None and package.lot is not None else ""
        totals[(gtin, lot_number)] += 1
    for role, epc_class, quantity, _uom in n.quantities:
        if role in ("class", "child_class"):
            gtin = gtin_of(epc_class) or ""
            totals[(gtin, lot_of(epc_class) or "")] += quantity if quantity is not None else 1
    return totals


def _party(n: NormalizedEvent, side: str) -> str:
    entries = n.sources if side == "source" else n.destinations
    by_type = {t: v for t, v in entries}
    for type_ in _PARTY_TYPES:
        if type_ in by_type:
            return by_type[type_]
    return ""


def _location(n: NormalizedEvent, side: str) -> str:
    entries = n.sources if side == "source" else n.destinations
    return next((v for t, v in entries if t == "location"), "")


def _org(ctx: _Ctx, identifier: str) -> Organization | None:
    gln = gln_of(identifier) if identifier else None
    org_id = ctx.resolver.organization_id_for_gln(gln) if gln else None
    return Organization(pk=org_id) if org_id else None


def _ship(ctx: _Ctx, event: CustodyEvent, n: NormalizedEvent) -> None:
    from_party = _party(n, "source") or n.biz_location or n.read_point or ""
    to_party = _party(n, "destination")
    from_org, to_org = _org(ctx, from_party), _org(ctx, to_party)
    transfers = []
    for (gtin, lot_number), quantity in _lot_quantities(ctx, n, event.seq).items():
        if not gtin:
            continue
        lot = _lot(ctx, gtin, lot_number) if lot_number else None
        transfers.append(
            Transfer(
                lot=lot,
                gtin=gtin,
                lot_number=lot_number,
                quantity=quantity,
                from_organization=from_org,
                to_organization=to_org,
                from_party=from_party,
                to_party=to_party,
                from_location=_location(n, "source") or n.biz_location or n.read_point or "",
                to_location=_location(n, "destination"),
                ship_seq=event.seq,
                ship_time=event.event_time,
                status=Transfer.Status.IN_TRANSIT,
                despatch_advice=_despatch_advice(n),
                derived_at_seq=event.seq,
            )
        )
    Transfer.objects.bulk_create(transfers)


def _receive(ctx: _Ctx, event: CustodyEvent, n: NormalizedEvent) -> None:
    received = _lot_quantities(ctx, n, event.seq)
    receiver = _party(n, "destination") or n.biz_location or n.read_point or ""
    receiver_org = _org(ctx, receiver)
    sender = _party(n, "source")
    open_transfers = Transfer.objects.filter(
        status=Transfer.Status.IN_TRANSIT,
        gtin__in={g for g, _ in received},
        ship_seq__lt=event.seq,
    )
    if receiver_org is not None:
        open_transfers = open_transfers.filter(to_organization_id=receiver_org.pk)
    elif receiver:
        open_transfers = open_transfers.filter(to_party=receiver)
    if sender:
        open_transfers = open_transfers.filter(from_party=sender)
    despatch_advice = _despatch_advice(n)
    by_lot = _open_by_lot(open_transfers, received, despatch_advice)
    overlap = _LazyOverlap(n, by_lot)
    for (gtin, lot_number), quantity in received.items():
        if not gtin:
            continue
        candidates = by_lot.get((gtin, lot_number))
        if candidates:
            transfer = _shipment_received(candidates, despatch_advice, overlap)
            candidates.remove(transfer)
            transfer.receive_seq = event.seq
            transfer.receive_time = event.event_time
            transfer.received_quantity = quantity
            transfer.to_location = transfer.to_location or n.biz_location or n.read_point or ""
            transfer.status = Transfer.Status.RECEIVED
            transfer.derived_at_seq = event.seq
            transfer.save()
        else:
            lot = _lot(ctx, gtin, lot_number) if lot_number else None
            Transfer.objects.create(
                lot=lot,
                gtin=gtin,
                lot_number=lot_number,
                quantity=quantity,
                received_quantity=quantity,
                from_party=sender,
                from_organization=_org(ctx, sender),
                to_party=receiver,
                to_organization=receiver_org,
                to_location=n.biz_location or n.read_point or "",
                receive_seq=event.seq,
                receive_time=event.event_time,
                status=Transfer.Status.RECEIVED_ONLY,
                despatch_advice=despatch_advice,
                derived_at_seq=event.seq,
            )


def _despatch_advice(n: NormalizedEvent) -> str:
    """The event's despatch-advice bizTransaction (CBV type ``desadv``), or ''."""
    return next((value for kind, value in n.biz_transactions if kind == "desadv"), "")[:200]


def _shared_epcs(n: NormalizedEvent, ship_seqs: set[int]) -> dict[int, int]:
    """How many of the receipt's top-level EPCs (cases, pallets, loose packages) each shipment listed."""
    epcs = [epc for role, epc in n.epcs if role in ("epc", "parent")]
    if not epcs or not ship_seqs:
        return {}
    rows = (
        EventEPC.objects.filter(seq__in=ship_seqs, epc__in=epcs, role__in=("epc", "parent"))
        .values("seq")
        .annotate(shared=Count("id"))
    )
    return {row["seq"]: row["shared"] for row in rows}


def _open_by_lot(
    open_transfers: QuerySet[Transfer], received: dict[tuple[str, str], float], despatch_advice: str
) -> dict[tuple[str, str], list[Transfer]]:
    """The open shipments a receipt may answer, by lot, in ship order.

    When the despatch advice names an open shipment of every lot received, those are the answer and the
    receiver's other open shipments (a wholesaler's DC has hundreds) are not read at all.
    """
    by_lot: dict[tuple[str, str], list[Transfer]] = defaultdict(list)
    if despatch_advice:
        for transfer in open_transfers.filter(despatch_advice=despatch_advice).order_by("ship_seq"):
            by_lot[(transfer.gtin, transfer.lot_number)].append(transfer)
        if all(key in by_lot for key in received if key[0]):
            return by_lot
        by_lot.clear()
    for transfer in open_transfers.order_by("ship_seq"):
        by_lot[(transfer.gtin, transfer.lot_number)].append(transfer)
    return by_lot


class _LazyOverlap:
    """_shared_epcs of a receipt with its candidate shipments, queried only when a despatch advice does not decide."""

    def __init__(self, n: NormalizedEvent, by_lot: dict[tuple[str, str], list[Transfer]]) -> None:
        self.n, self.by_lot = n, by_lot
        self.counts: dict[int, int] | None = None

    def get(self, ship_seq: int, default: int) -> int:
        if self.counts is None:
            seqs = {t.ship_seq for ts in self.by_lot.values() for t in ts if t.ship_seq is not None}
            self.counts = _shared_epcs(self.n, seqs)
        return self.counts.get(ship_seq, default)


def _shipment_received(candidates: list[Transfer], despatch_advice: str, overlap: _LazyOverlap) -> Transfer:
    """The open shipment a receipt answers, among those of its lot to its receiver (ordered by ship seq).

    The shipment its despatch advice names; else the one sharing most of its cases and packages; else the
    latest (a later shipment supersedes an earlier one).
    """
    if despatch_advice:
        named = [t for t in candidates if t.despatch_advice == despatch_advice]
        if named:
            return named[-1]
    best = max(candidates, key=lambda t: (overlap.get(t.ship_seq or -1, 0), t.ship_seq or -1))
    return best if overlap.get(best.ship_seq or -1, 0) else candidates[-1]


def _glns(normalized: list[tuple[CustodyEvent, NormalizedEvent]]) -> set[str]:
    """Every party and location GLN the batch's events name (resolved to organizations in one go)."""
    found: set[str] = set()
    for _event, n in normalized:
        for identifier in (n.read_point, n.biz_location, *(v for _t, v in n.sources), *(v for _t, v in n.destinations)):
            gln = gln_of(identifier) if identifier else None
            if gln:
                found.add(gln)
    return found
