"""Reads of the verifiable ledger: checkpoints, keys, proofs and proof bundles, in the wire format of
docs/ledger-format.md (what a third party verifies with its own RFC 9162 code)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from .epcis.identifiers import IdentifierError, canonical
from .ledger.bundle import bundle_consistency, bundle_event, make_bundle
from .ledger.checkpoint import format_timestamp
from .ledger_store import consistency_proof, event_entry, inclusion_proof, inclusion_proofs
from .models import Checkpoint, CustodyEvent, EventEPC, LedgerHead, SigningKey
from .problems import ProblemError

# Containers inside containers: item -> case -> pallet -> shipment unit is as deep as practice goes.
_MAX_NESTING = 4


def ledger_size() -> int:
    return LedgerHead.objects.filter(id=1).values_list("tree_size", flat=True).first() or 0


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "timestamp": format_timestamp(checkpoint.timestamp),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "note": checkpoint.note,
    }


def checkpoint_latest() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size", "-timestamp", "-id").first()


def _bad_parameter(name: str, detail: str) -> ProblemError:
    return ProblemError(status_code=400, title="Invalid query parameter", detail=detail, extra={"parameter": name})


def int_parameter(params: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _bad_parameter(name, f"The query parameter {name} is required (a whole number).")
        return None
    if not raw.isascii() or not raw.isdigit():
        raise _bad_parameter(name, f"{name} must be a non-negative whole number, got {raw!r}.")
    return int(raw)


def _time_parameter(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    parsed = parse_datetime(raw)
    if parsed is None or parsed.tzinfo is None:
        raise _bad_parameter(name, f"{name} must be an RFC 3339 date-time with a time zone, e.g. 2026-01-31T12:00:00Z.")
    return parsed


def checkpoints_filter(*, params: Mapping[str, str]) -> QuerySet[Checkpoint]:
    """Checkpoints, newest first, filtered by tree size (exact or range) and issue time."""
    qs = Checkpoint.objects.all()
    for name, lookup in (
        ("tree_size", "tree_size"),
        ("min_tree_size", "tree_size__gte"),
        ("max_tree_size", "tree_size__lte"),
    ):
        value = int_parameter(params, name)
        if value is not None:
            qs = qs.filter(**{lookup: value})
    for name, lookup in (("since", "timestamp__gte"), ("until", "timestamp__lt")):
        moment = _time_parameter(params, name)
        if moment is not None:
            qs = qs.filter(**{lookup: moment})
    return qs.order_by("-id")


def signing_keys() -> list[dict[str, str]]:
    """Every key that ever signed a checkpoint, retired ones included: old checkpoints keep verifying."""
    return [
        {"key_id": k.key_id, "algorithm": k.algorithm, "public_key": k.public_key}
        for k in SigningKey.objects.order_by("created_at", "key_id")
    ]


def _covering_tree_size(leaf_index: int, tree_size: int | None) -> int:
    current = ledger_size()
    if tree_size is None:
        latest = checkpoint_latest()
        if latest is None or latest.tree_size <= leaf_index:
            raise ProblemError(
                status_code=404,
                title="Not yet covered by a checkpoint",
                detail=f"Ledger entry {leaf_index} is recorded but no signed checkpoint covers it yet. Checkpoints "
                f"are issued periodically; retry shortly, or pass tree_size (at most {current}) explicitly.",
            )
        return latest.tree_size
    if tree_size > current:
        raise _bad_parameter(
            "tree_size", f"tree_size {tree_size} is larger than the ledger, which has {current} entries."
        )
    if tree_size <= leaf_index:
        raise _bad_parameter(
            "tree_size",
            f"The event is ledger entry {leaf_index}, which is not in a tree of {tree_size} entries; "
            f"use a tree_size of at least {leaf_index + 1} (and at most {current}).",
        )
    return tree_size


def event_inclusion(*, event: CustodyEvent, tree_size: int | None) -> dict[str, Any]:
    """The inclusion proof of one (visible) event, in the tree of ``tree_size`` or of the latest checkpoint."""
    size = _covering_tree_size(event.seq, tree_size)
    return {
        "leaf_index": event.seq,
        "tree_size": size,
        "entry": base64.b64encode(event_entry(event)).decode("ascii"),
        "audit_path": [h.hex() for h in inclusion_proof(event.seq, size)],
    }


def ledger_consistency(*, first: int, second: int) -> dict[str, Any]:
    current = ledger_size()
    if first < 1:
        raise _bad_parameter(
            "first",
            "first must be at least 1: every tree extends the empty one, "
            "so a proof from size 0 says nothing (RFC 9162 defines none).",
        )
    if second < first:
        raise _bad_parameter("second", f"second ({second}) must not be smaller than first ({first}).")
    if second > current:
        raise _bad_parameter("second", f"second ({second}) is larger than the ledger, which has {current} entries.")
    return {
        "first": first,
        "second": second,
        "consistency_path": [h.hex() for h in consistency_proof(first, second)],
    }


def serial_custody_chain(*, gtin: str, serial: str) -> QuerySet[CustodyEvent]:
    """Every event about one package: its SGTIN and every container (case, pallet) that held it."""
    sgtin = canonical(f"https://id.gs1.org/01/{gtin}/21/{quote(serial, safe='')}")
    epcs = {sgtin}
    frontier = {sgtin}
    for _ in range(_MAX_NESTING):
        packing = EventEPC.objects.filter(role=EventEPC.Role.CHILD, epc__in=frontier).values("seq")
        parents = set(EventEPC.objects.filter(seq__in=packing, role=EventEPC.Role.PARENT).values_list("epc", flat=True))
        frontier = parents - epcs
        if not frontier:
            break
        epcs |= frontier
    return CustodyEvent.objects.filter(seq__in=EventEPC.objects.filter(epc__in=epcs).values("seq"))


def identifier_problem(exc: IdentifierError) -> ProblemError:
    return ProblemError(
        status_code=400,
        title="Invalid identifier",
        detail=f"{exc}. Use the GTIN-14 with its check digit and the lot or serial as printed.",
    )


def trace_bundle(
    *, events: Sequence[CustodyEvent], checkpoint: Checkpoint, since: Checkpoint | None = None
) -> dict[str, Any]:
    """A provenance-bundle/v1 proving each event against ``checkpoint`` (optionally consistent with ``since``)."""
    proofs = inclusion_proofs([e.seq for e in events], checkpoint.tree_size)
    items = [
        bundle_event(
            event_id=e.event_id, leaf_index=e.seq, entry=event_entry(e), audit_path=proofs[e.seq], event=e.body
        )
        for e in events
    ]
    consistency = None
    if since is not None:
        consistency = bundle_consistency(
            first_checkpoint=checkpoint_json(since),
            consistency_path=consistency_proof(since.tree_size, checkpoint.tree_size),
        )
    return make_bundle(
        checkpoint=checkpoint_json(checkpoint), keys=signing_keys(), events=items, consistency=consistency
    )


def checkpoint_of_size(tree_size: int) -> Checkpoint | None:
    return Checkpoint.objects.filter(tree_size=tree_size).order_by("-id").first()
