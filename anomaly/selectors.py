"""Reads of the anomaly app: flags for the API and the compliance UI, and labels for training."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet

from anomaly.models import Flag, FlagDecision, ModelVersion


@dataclass(frozen=True)
class FlagFilters:
    statuses: tuple[str, ...] = ()
    min_score: float | None = None
    max_score: float | None = None
    partner: str | None = None  # organization id or GLN; matches either side of the transfer
    partner_name: str | None = None  # part of an organization's name, either side (the compliance UI's search)
    lot: str | None = None
    gtin: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def flag_list(*, filters: FlagFilters) -> QuerySet[Flag]:
    qs = Flag.objects.select_related(
        "transfer", "model_version", "from_organization", "to_organization", "lot__product"
    ).order_by("-score", "-id")
    if filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    if filters.min_score is not None:
        qs = qs.filter(score__gte=filters.min_score)
    if filters.max_score is not None:
        qs = qs.filter(score__lte=filters.max_score)
    if filters.partner:
        p = filters.partner
        if p.isdigit() and len(p) != 13:
            qs = qs.filter(Q(from_organization_id=int(p)) | Q(to_organization_id=int(p)))
        else:
            qs = qs.filter(Q(from_organization__gln=p) | Q(to_organization__gln=p))
    if filters.partner_name:
        name = filters.partner_name
        qs = qs.filter(Q(from_organization__name__icontains=name) | Q(to_organization__name__icontains=name))
    if filters.lot:
        qs = qs.filter(transfer__lot_number=filters.lot)
    if filters.gtin:
        qs = qs.filter(transfer__gtin=filters.gtin)
    if filters.created_after:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(created_at__lt=filters.created_before)
    return qs


def flag_get(*, flag_id: int) -> Flag | None:
    """One flag with its decisions (oldest first, each with its actor) in two queries."""
    return (
        Flag.objects.select_related("transfer", "model_version", "from_organization", "to_organization", "lot__product")
        .prefetch_related(
            Prefetch("decisions", queryset=FlagDecision.objects.select_related("actor").order_by("at", "id"))
        )
        .filter(pk=flag_id)
        .first()
    )


def flag_status_counts() -> dict[str, int]:
    """How many flags are in each status (every status present, zero where none)."""
    counts = dict.fromkeys(Flag.Status.values, 0)
    for status, n in Flag.objects.order_by().values_list("status").annotate(n=Count("id")):
        counts[status] = n
    return counts


def compliance_labels() -> dict[int, int]:
    """Transfer id -> 1 (confirmed suspect) or 0 (cleared), from each flag's latest decision."""
    labels: dict[int, int] = {}
    for transfer_id, status in (
        FlagDecision.objects.filter(status__in=[Flag.Status.SUSPECT, Flag.Status.CLEARED])
        .order_by("at", "id")
        .values_list("flag__transfer_id", "status")
    ):
        labels[transfer_id] = 1 if status == Flag.Status.SUSPECT else 0
    return labels


def model_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-created_at", "-id")
