"""Admin for partners, master data and keys; the ledger is view-only for everyone, superusers included."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin

from .models import (
    CaptureJob,
    CompanyPrefix,
    CustodyEvent,
    Location,
    Lot,
    Organization,
    PartnerApiKey,
    Product,
    Transfer,
)


class CompanyPrefixInline(admin.TabularInline):
    model = CompanyPrefix
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "gln", "kind", "licence_status", "authorized_trading_partner", "is_operator", "created_at")
    list_filter = ("kind", "licence_status", "authorized_trading_partner", "is_operator")
    search_fields = ("name", "gln", "licence_number")
    inlines = [CompanyPrefixInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The GLN is part of every ledger entry of this partner (Organization.save refuses a change).
        return ("gln",) if obj is not None else ()


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("sgln", "name", "organization", "latitude", "longitude")
    search_fields = ("sgln", "gln", "name")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("gtin", "ndc", "name", "manufacturer")
    search_fields = ("gtin", "ndc", "name")
    autocomplete_fields = ("manufacturer",)


@admin.register(Lot)
class LotAdmin(admin.ModelAdmin):
    list_display = ("product", "lot_number", "expiry", "recalled")
    search_fields = ("lot_number", "product__gtin")
    list_filter = ("recalled",)
    autocomplete_fields = ("product",)


@admin.register(PartnerApiKey)
class PartnerApiKeyAdmin(APIKeyModelAdmin):
    list_display: Any = (*APIKeyModelAdmin.list_display, "organization", "can_capture", "can_query")
    list_filter: ClassVar[Any] = (*APIKeyModelAdmin.list_filter, "can_capture", "can_query")
    search_fields: ClassVar[Any] = (*APIKeyModelAdmin.search_fields, "organization__name", "organization__gln")
    autocomplete_fields = ("organization",)
    actions = ["revoke_keys"]

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: Any) -> None:
        from . import services

        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody changes or deletes ledger rows here; the database refuses it too."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CustodyEvent)
class CustodyEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "event_type", "biz_step", "event_time", "record_time", "submitter", "event_id")
    list_filter = ("event_type", "biz_step", "is_error_declaration")
    search_fields = ("event_id", "event_hash")
    list_select_related = ("submitter",)
    show_full_result_count = False


@admin.register(CaptureJob)
class CaptureJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "organization", "created_at", "success", "event_count", "recorded_count", "behaviour")
    list_filter = ("success", "behaviour")
    list_select_related = ("organization",)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("gtin", "lot_number", "quantity", "from_party", "to_party", "ship_time", "status")
    list_filter = ("status",)
    search_fields = ("gtin", "lot_number")


from . import audit_admin  # noqa: E402,F401 - reasons, audit trail and CSV export on the admins above (docs/audit.md)
