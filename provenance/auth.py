"""Partner authentication: `Authorization: Bearer <key>` with hashed, scoped, expiring API keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from .models import Organization, PartnerApiKey


@dataclass(frozen=True)
class PartnerPrincipal:
    """The authenticated caller of a partner request (request.user for key-authenticated calls)."""

    organization: Organization
    api_key: PartnerApiKey

    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def is_operator(self) -> bool:
        return self.organization.is_operator

    @property
    def pk(self) -> str:
        return f"key:{self.api_key.pk}"

    def __str__(self) -> str:
        return f"{self.organization.name} (key {self.api_key.prefix})"


class BearerApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[PartnerPrincipal, PartnerApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key or " " in key:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <API key>'.")
        try:
            api_key = cast(PartnerApiKey, PartnerApiKey.objects.get_from_key(key))
        except PartnerApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("This API key is not known.") from None
        if api_key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if api_key.expiry_date is not None and api_key.expiry_date <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        organization = Organization.objects.get(pk=api_key.organization_id)
        return PartnerPrincipal(organization=organization, api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def partner_of(request: Request) -> PartnerPrincipal | None:
    user = request.user
    return user if isinstance(user, PartnerPrincipal) else None


def is_compliance_staff(request: Request) -> bool:
    user = request.user
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False)) and not isinstance(
        user, PartnerPrincipal
    )


class CanCapture(permissions.BasePermission):
    message = "This API key is not scoped for capture."

    def has_permission(self, request: Request, view: Any) -> bool:
        partner = partner_of(request)
        return partner is not None and partner.api_key.can_capture


class CanQuery(permissions.BasePermission):
    """Partners with a query-scoped key, and signed-in compliance staff."""

    message = "This API key is not scoped for queries."

    def has_permission(self, request: Request, view: Any) -> bool:
        partner = partner_of(request)
        if partner is not None:
            return partner.api_key.can_query
        return is_compliance_staff(request)


class IsOperatorOrStaff(permissions.BasePermission):
    message = "Only compliance staff and operator keys may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        partner = partner_of(request)
        if partner is not None:
            return partner.is_operator and partner.api_key.can_query
        return is_compliance_staff(request)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Throttle per API key (and per user or address for everyone else)."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: Any) -> str:
        partner = partner_of(request)
        if partner is not None:
            ident = f"key-{partner.api_key.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
