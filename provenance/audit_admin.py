"""The audit trail in the admin: a required reason on every change form, the trail of each object, CSV export.

Imported at the end of provenance/admin.py: it wraps the admins registered there (and Django's user
and group admins) rather than editing them, and registers a read-only admin per audit event table.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as urlquote

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.contrib.auth import admin as _auth_admin  # noqa: F401 - registers User and Group, wrapped below
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from pghistory.admin import EventModelAdmin, EventsAdmin

from . import models as provenance_models
from .audit import audit_context, audit_csv, audit_enabled, audit_note, audit_trail, event_models_for

REASON_FIELD = "audit_reason"


def _reason_field() -> forms.CharField:
    return forms.CharField(
        label="Reason for this change",
        required=True,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Recorded in the audit trail with your name, the time and the old and new values "
        "(EU GMP Annex 11 §9: the reason for a change must be documented).",
    )


def _csv_response(model: type[models.Model], ids: list[Any] | None, name: str) -> HttpResponse:
    response = HttpResponse(audit_csv(audit_trail(model=model, object_ids=ids)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}-audit-{timezone.now():%Y%m%dT%H%M%SZ}.csv"'
    return response


class AuditedAdminMixin:
    """Put first in the bases of a ModelAdmin whose model is audited."""

    change_form_template = "provenance/admin/audited_change_form.html"

    # --- the reason ---------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if REASON_FIELD not in flatten_fieldsets(fieldsets):
            fieldsets = [*fieldsets, ("Audit trail", {"fields": [REASON_FIELD]})]
        return fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        # The reason is a form field, not a model field: keep it out of what modelform_factory is asked for.
        fields = kwargs["fields"] if "fields" in kwargs else flatten_fieldsets(self.get_fieldsets(request, obj))
        if fields is not None:
            kwargs["fields"] = [f for f in fields if f != REASON_FIELD]
        form = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        return type(form.__name__, (form,), {REASON_FIELD: _reason_field()})

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        # Everything saved from here on in this request (the object, its inlines) carries the reason.
        audit_note(reason=form.cleaned_data.get(REASON_FIELD, ""), admin_action="change" if change else "add")
        return super().save_form(request, form, change)  # type: ignore[misc]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        extra_context = {**(extra_context or {}), **self._audit_links(object_id)}
        with audit_context(admin=self.opts.label):  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        reason = request.POST.get(REASON_FIELD) or "deleted in the admin"
        with audit_context(admin=self.opts.label, admin_action="delete", reason=reason):  # type: ignore[attr-defined]
            return super().delete_view(request, object_id, extra_context)  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        action = request.POST.get("action") if request.method == "POST" else None
        metadata = {"admin_action": action, "reason": f"admin action {action!r}"} if action else {}
        with audit_context(admin=self.opts.label, **metadata):  # type: ignore[attr-defined]
            return super().changelist_view(request, extra_context)  # type: ignore[misc]

    # --- reading the trail ------------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)  # type: ignore[misc]
        if self.has_view_permission(request):  # type: ignore[attr-defined]
            action = type(self).export_audit_trail
            description = action.short_description  # type: ignore[attr-defined]
            actions["export_audit_trail"] = (action, "export_audit_trail", description)
        return actions

    @admin.action(description="Export the audit trail of the selected objects (CSV)")
    def export_audit_trail(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        ids = list(queryset.values_list("pk", flat=True))
        return _csv_response(self.model, ids, self.opts.model_name)  # type: ignore[attr-defined]

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name  # type: ignore[attr-defined]
        view = self.admin_site.admin_view(self.audit_csv_view)  # type: ignore[attr-defined]
        own = [path("<path:object_id>/audit-trail.csv", view, name="{}_{}_audit_csv".format(*info))]
        return own + super().get_urls()  # type: ignore[misc]

    def audit_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            raise Http404("No such object")
        if not self.has_view_permission(request, obj):  # type: ignore[attr-defined]
            raise PermissionDenied
        return _csv_response(self.model, [obj.pk], f"{self.opts.model_name}-{obj.pk}")  # type: ignore[attr-defined]

    def _audit_links(self, object_id: str | None) -> dict[str, Any]:
        if object_id is None:
            return {}
        opts = self.opts  # type: ignore[attr-defined]
        target = f"{opts.label}:{unquote(object_id)}"
        links: dict[str, Any] = {
            "audit_enabled": audit_enabled(),
            "audit_csv_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_audit_csv", args=[quote(object_id)]),
        }
        own = [m for m in event_models_for(self.model) if hasattr(m, "pgh_obj")]  # type: ignore[attr-defined]
        if own:
            event_opts = own[0]._meta
            try:
                changelist = reverse(f"admin:{event_opts.app_label}_{event_opts.model_name}_changelist")
                links["audit_trail_url"] = f"{changelist}?obj={urlquote(target)}"
            except NoReverseMatch:
                pass
        if audit_enabled():
            events = reverse("admin:pghistory_events_changelist")
            links["audit_diff_url"] = f"{events}?method=tracks&obj={urlquote(target)}"
        return links


class AuditEventModelAdmin(EventModelAdmin):
    """Read-only list of one audit table: when, what, who, why (pghistory's filters by label and object)."""

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        related = [f.name for f in self.model._meta.fields if f.is_relation and not f.name.startswith("pgh_")]
        target = ["pgh_obj_id"] if hasattr(self.model, "pgh_obj") else related
        return ["pgh_created_at", "pgh_label", *target, "who", "why", "pgh_db_user"]

    @admin.display(description="who")
    def who(self, obj: Any) -> str:
        ctx = obj.pgh_context or {}
        if ctx.get("api_key"):
            return f"API key {ctx['api_key']} ({ctx.get('organization', '?')})"
        return str(ctx.get("username") or ctx.get("user") or "—")

    @admin.display(description="why")
    def why(self, obj: Any) -> str:
        return str((obj.pgh_context or {}).get("reason") or "—")


class AuditEventsAdmin(EventsAdmin):
    """pghistory's all-events admin (diffs across tables), with who/why; empty where there is no audit trail.

    Enable with settings.PGHISTORY_ADMIN_CLASS = "provenance.audit_admin.AuditEventsAdmin".
    """

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return ["pgh_created_at", "pgh_label", "pgh_obj_model", "pgh_obj_id", "pgh_diff", "who", "why"]

    who = AuditEventModelAdmin.who
    why = AuditEventModelAdmin.why

    def get_queryset(self, request: HttpRequest) -> Any:
        if not audit_enabled():  # its aggregate query is PostgreSQL SQL (JSONB); SQLite has no events anyway
            return self.model.no_objects.all()
        return super().get_queryset(request)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if not audit_enabled():
            return TemplateResponse(
                request,
                "provenance/admin/no_audit_trail.html",
                {**self.admin_site.each_context(request), "title": "Events"},
            )
        return super().changelist_view(request, extra_context)


def _wrap(model: type[models.Model]) -> None:
    current = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(model, type(current.__name__, (AuditedAdminMixin, current), {"__module__": __name__}))


for _model in (
    provenance_models.Organization,
    provenance_models.Location,
    provenance_models.Product,
    provenance_models.Lot,
    provenance_models.PartnerApiKey,
    User,
    Group,
):
    _wrap(_model)

for _event_model in (
    provenance_models.OrganizationAudit,
    provenance_models.CompanyPrefixAudit,
    provenance_models.LocationAudit,
    provenance_models.ProductAudit,
    provenance_models.LotAudit,
    provenance_models.PartnerApiKeyAudit,
    provenance_models.UserAudit,
    provenance_models.GroupAudit,
    provenance_models.UserGroupAudit,
    provenance_models.UserPermissionAudit,
    provenance_models.GroupPermissionAudit,
):
    admin.site.register(_event_model, AuditEventModelAdmin)
