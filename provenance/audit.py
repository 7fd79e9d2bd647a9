"""Who and why for the audit trail, and reading it back (docs/audit.md).

The database records *what* and *when* by itself (pghistory triggers, provenance/models.py). The
application adds *who* (the signed-in user, or the partner's API key) and *why* (a reason a person
gave) as context that the triggers copy into each event. All of it is PostgreSQL-only: on the
embedded SQLite default there are no triggers and these helpers do nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pghistory
import pghistory.models
from django.apps import apps
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection, models
from django.http import HttpRequest, HttpResponse
from pghistory import config as pghistory_config

from .auth import PartnerPrincipal
from .ledger.checkpoint import format_timestamp

REASON = "reason"


def audit_enabled() -> bool:
    """True where the database keeps the audit trail (PostgreSQL)."""
    return connection.vendor == "postgresql"


def audit_context(**metadata: Any) -> Any:
    """Attach metadata to the audit events of the changes made inside (opens a context if none is open)."""
    return pghistory.context(**metadata) if audit_enabled() else nullcontext()


def audit_reason(reason: str, **metadata: Any) -> Any:
    """``with audit_reason("licence renewed, see ticket 1234"): ...`` records why a person changed something."""
    return audit_context(**{REASON: reason, **metadata})


def audit_note(**metadata: Any) -> None:
    """Add metadata to the context already open (a request's): it applies to the changes made from now on."""
    if audit_enabled():
        pghistory.context(**metadata)


def who(user: Any) -> dict[str, Any]:
    """The actor as audit context: a person (id and username at the time) or a partner's API key."""
    if isinstance(user, PartnerPrincipal):
        return {"user": None, "username": None, "api_key": user.api_key.prefix, "organization": user.organization.gln}
    if user is not None and getattr(user, "is_authenticated", False) and hasattr(user, "_meta"):
        return {"user": user.pk, "username": user.get_username(), "api_key": None}
    return {"user": None, "username": None}


class _AuditedWSGIRequest(WSGIRequest):
    """DRF authenticates inside the view and then sets request.user: record the actor at that moment."""

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr == "user":
            pghistory.context(**who(value))
        super().__setattr__(attr, value)


class AuditMiddleware:
    """pghistory's HistoryMiddleware, plus API-key actors, and nothing at all where there is no audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not audit_enabled() or request.method not in pghistory_config.middleware_methods():
            return self.get_response(request)
        user = getattr(request, "user", None)
        with pghistory.context(url=request.path, method=request.method, **who(user)):
            if type(request) is WSGIRequest:
                request.__class__ = _AuditedWSGIRequest
            return self.get_response(request)


# --- reading the trail ------------------------------------------------------------------------------


@dataclass
class AuditRecord:
    """One audited change: when, what (old and new values), who, why."""

    when: datetime
    model: str
    object_id: str
    action: str
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    context_id: str | None = None  # shared by the changes of one request or command
    db_user: str | None = None

    @property
    def reason(self) -> str:
        return str(self.context.get(REASON) or "")


def event_models_for(model: type[models.Model]) -> list[Any]:
    """Audit event models about ``model``: its own, and membership tables that reference it (users, groups)."""
    concrete = model._meta.concrete_model
    found: list[Any] = []
    for candidate in apps.get_models():
        if not issubclass(candidate, pghistory.models.Event) or candidate.pgh_tracked_model is None:
            continue
        if candidate.pgh_tracked_model._meta.concrete_model is concrete or (
            not hasattr(candidate, "pgh_obj")
            and any(
                f.is_relation and f.related_model is not None and f.related_model._meta.concrete_model is concrete
                for f in candidate._meta.fields
            )
        ):
            found.append(candidate)
    return found


def _snapshot(event: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(event, f.attname) for f in event._meta.fields if not f.name.startswith("pgh_")}


def _membership_filter(event_model: type[models.Model], model: type[models.Model], ids: list[Any]) -> models.Q:
    concrete = model._meta.concrete_model
    q = models.Q()
    for f in event_model._meta.fields:
        if f.is_relation and f.related_model is not None and f.related_model._meta.concrete_model is concrete:
            q |= models.Q(**{f"{f.attname}__in": ids})
    return q


def audit_trail(*, model: type[models.Model], object_ids: Iterable[Any] | None = None) -> Iterator[AuditRecord]:
    """The changes of ``model`` (or of the given objects), oldest first per event table, with old and new values.

    An update's old values are the previous snapshot of the same object; a change made before tracking
    began has no previous snapshot, so only its new values are known.
    """
    ids = None if object_ids is None else [str(i) for i in object_ids]
    for event_model in event_models_for(model):
        qs = event_model.objects.all()
        tracks = hasattr(event_model, "pgh_obj")
        if ids is not None:
            qs = qs.filter(pgh_obj_id__in=ids) if tracks else qs.filter(_membership_filter(event_model, model, ids))
        order = ("pgh_obj_id", "pgh_id") if tracks else ("pgh_id",)
        previous: dict[Any, dict[str, Any]] = {}
        label = event_model.pgh_tracked_model._meta.concrete_model._meta.label
        for event in qs.order_by(*order).iterator(chunk_size=2000):
            data = _snapshot(event)
            object_id = str(event.pgh_obj_id) if tracks else ""
            before = previous.get(object_id) if tracks else None
            changes: dict[str, tuple[Any, Any]]
            if event.pgh_label in ("insert", "add"):
                changes = {k: (None, v) for k, v in data.items()}
            elif event.pgh_label in ("delete", "remove"):
                changes = {k: (v, None) for k, v in data.items()}
            elif before is None:
                changes = {k: ("?", v) for k, v in data.items()}
            else:
                changes = {k: (before.get(k), v) for k, v in data.items() if before.get(k) != v}
            if tracks and event.pgh_label != "password_change":
                previous[object_id] = data
            yield AuditRecord(
                when=event.pgh_created_at,
                model=label,
                object_id=object_id,
                action=event.pgh_label,
                changes=changes,
                context=dict(event.pgh_context or {}),
                context_id=str(event.pgh_context_id) if event.pgh_context_id else None,
                db_user=getattr(event, "pgh_db_user", None),
            )


CSV_HEADER = [
    "time (UTC)",
    "model",
    "object",
    "action",
    "field",
    "old value",
    "new value",
    "user id",
    "username",
    "API key",
    "organization",
    "reason",
    "URL",
    "database role",
    "request",
]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)


def audit_csv_rows(records: Iterable[AuditRecord]) -> Iterator[list[str]]:
    """One row per changed field (the long form inspectors read: original and changed value side by side)."""
    for record in sorted(records, key=lambda r: (r.when, r.model, r.object_id)):
        ctx = record.context
        tail = [
            _cell(ctx.get("user")),
            _cell(ctx.get("username")),
            _cell(ctx.get("api_key")),
            _cell(ctx.get("organization")),
            record.reason,
            _cell(ctx.get("url")),
            _cell(record.db_user),
            _cell(record.context_id),
        ]
        head = [_cell(record.when), record.model, record.object_id, record.action]
        if not record.changes:
            yield [*head, "", "", "", *tail]
        for name, (old, new) in record.changes.items():
            yield [*head, name, _cell(old), _cell(new), *tail]


def audit_csv(records: Iterable[AuditRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(audit_csv_rows(records))
    return out.getvalue()
