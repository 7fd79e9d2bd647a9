"""Compliance UI: signed-in staff review flags and decide them. Reads go through selectors, the decision through
anomaly.services.flag_decide; every decision is the signed-in user's."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from anomaly import selectors, services
from anomaly.forms import FlagDecisionForm, FlagFilterForm
from anomaly.models import Flag
from provenance.audit import audit_reason
from provenance.models import CustodyEvent, LedgerHead, Organization, Transfer

FLAGS_PER_PAGE = 25
TOP_OPEN_FLAGS = 10


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the login page; signed-in users who are not staff are refused (403)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("The compliance UI is for compliance staff.")
        return view(request, *args, **kwargs)

    return wrapped


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    head = LedgerHead.objects.filter(id=1).first()
    context = {
        "tree_size": head.tree_size if head else 0,
        "organizations": Organization.objects.count(),
        "transfers": Transfer.objects.count(),
        "flag_counts": selectors.flag_status_counts(),
        "top_open_flags": selectors.flag_list(filters=selectors.FlagFilters(statuses=(Flag.Status.OPEN,)))[
            :TOP_OPEN_FLAGS
        ],
        "recent_events": CustodyEvent.objects.order_by("-seq")
        .only("seq", "event_type", "biz_step", "event_time", "record_time", "submitter__name")
        .select_related("submitter")[:25],
    }
    return render(request, "anomaly/home.html", context)


@staff_required
def flag_list(request: HttpRequest) -> HttpResponse:
    form = FlagFilterForm(request.GET)
    # invalid filters list nothing rather than everything under filters the reviewer thinks apply
    flags = selectors.flag_list(filters=form.filters()) if form.is_valid() else Flag.objects.none()
    page = Paginator(flags, FLAGS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "anomaly/flag_list.html", {"form": form, "page": page})


@staff_required
def flag_detail(request: HttpRequest, flag_id: int) -> HttpResponse:
    flag = selectors.flag_get(flag_id=flag_id)
    if flag is None:
        raise Http404(f"There is no flag {flag_id}.")
    if request.method == "POST":
        form = FlagDecisionForm(request.POST)
        if form.is_valid():
            status, reason = form.cleaned_data["status"], form.cleaned_data["reason"]
            try:
                with audit_reason(reason):
                    services.flag_decide(flag=flag, status=status, actor=request.user, reason=reason)
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Flag {flag.pk} is now {status}. Your decision is recorded.")
                return redirect("flag-ui-detail", flag_id=flag.pk)
    else:
        form = FlagDecisionForm()
    context = {
        "flag": flag,
        "transfer": flag.transfer,
        "form": form,
        "events": [_event_link(e) for e in flag.event_ids],
        "explanation": _explanation(flag.explanation or {}),
        "decisions": list(flag.decisions.all()),
    }
    return render(request, "anomaly/flag_detail.html", context, status=400 if form.errors else 200)


def _event_link(event_id: str) -> dict[str, str]:
    # reverse() percent-encodes what a path cannot hold (the '?' of ni: eventIDs)
    return {"id": event_id, "url": reverse("epcis-event", kwargs={"event_id": event_id})}


def _explanation(raw: dict[str, Any]) -> dict[str, Any]:
    """The stored explanation (rules only, TreeSHAP, or the GNN's deep one) as the template reads it."""
    neighbours = [
        {**n, "events": [_event_link(e) for e in n.get("event_ids", [])]} for n in raw.get("neighbours", []) or []
    ]
    facts = raw.get("facts") or {}
    return {
        "method": raw.get("method", ""),
        "note": raw.get("note", ""),
        "production": raw.get("production", ""),
        "components": sorted((raw.get("components") or {}).items()),
        "novelty": raw.get("novelty"),
        "deep": bool(raw.get("deep")),
        "features": raw.get("features") or [],
        "neighbour_method": raw.get("neighbour_method", ""),
        "neighbours": neighbours,
        "facts": sorted(facts.items()) if isinstance(facts, dict) else [],
    }
