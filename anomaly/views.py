"""Compliance UI (signed-in staff)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from provenance.models import CustodyEvent, LedgerHead, Organization, Transfer


@login_required
def home(request: HttpRequest) -> HttpResponse:
    head = LedgerHead.objects.filter(id=1).first()
    context = {
        "tree_size": head.tree_size if head else 0,
        "organizations": Organization.objects.count(),
        "transfers": Transfer.objects.count(),
        "recent_events": CustodyEvent.objects.order_by("-seq")
        .only("seq", "event_type", "biz_step", "event_time", "record_time", "submitter__name")
        .select_related("submitter")[:25],
    }
    return render(request, "anomaly/home.html", context)
