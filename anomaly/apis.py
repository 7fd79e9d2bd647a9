"""/api/flags and /api/models: for signed-in compliance staff and operator API keys, never for partners.

A flag concerns a partner's competitors and customers, and says what the service suspects: partners
see their own events through /epcis, not the flags about them. Operator keys read flags but never decide
them: a decision is a person's, signed in, and attributable to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anomaly import selectors, services
from anomaly.forms import DECISIONS
from anomaly.models import Flag, ModelVersion
from provenance.audit import audit_reason
from provenance.auth import IsOperatorOrStaff, partner_of
from provenance.problems import ProblemError

PROBLEM = OpenApiResponse(OpenApiTypes.OBJECT, description="application/problem+json (RFC 7807)")


class FlagPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _PartySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    gln = serializers.CharField()


class _TransferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    gtin = serializers.CharField()
    lot = serializers.CharField(source="lot_number")
    quantity = serializers.FloatField()
    received_quantity = serializers.FloatField(allow_null=True)
    from_party = serializers.CharField()
    to_party = serializers.CharField()
    ship_time = serializers.DateTimeField(allow_null=True)
    receive_time = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()


class FlagOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    score = serializers.FloatField()
    scored_by = serializers.CharField()
    model_version = serializers.SerializerMethodField()
    transfer = _TransferSerializer()
    from_organization = _PartySerializer(allow_null=True)
    to_organization = _PartySerializer(allow_null=True)
    reasons = serializers.JSONField()
    event_ids = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_model_version(self, flag: Flag) -> str | None:
        return flag.model_version.version if flag.model_version is not None else None


class FlagDecisionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()
    actor = serializers.CharField(source="actor.get_username", help_text="The signed-in person who decided.")
    at = serializers.DateTimeField()


class FlagDetailSerializer(FlagOutputSerializer):
    explanation = serializers.JSONField()
    decisions = FlagDecisionOutputSerializer(many=True, source="decisions.all", help_text="Oldest first.")


def _float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ProblemError(
            status_code=400,
            title="The request is not valid",
            detail=f"{name} must be a number between 0 and 1, e.g. {name}=0.9.",
            errors=[{"field": name, "detail": f"{raw!r} is not a number"}],
        ) from None


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ProblemError(
            status_code=400,
            title="The request is not valid",
            detail=f"{name} must be an RFC 3339 time with a UTC offset, e.g. {name}=2026-11-01T00:00:00Z.",
            errors=[{"field": name, "detail": f"{raw!r} is not an RFC 3339 time"}],
        )
    return moment


class FlagListApi(APIView):
    permission_classes = [IsOperatorOrStaff]

    @extend_schema(
        summary="Flags raised by scoring (compliance staff and operator keys only)",
        parameters=[
            OpenApiParameter(
                "status", OpenApiTypes.STR, description="open, investigating, cleared, suspect (comma-separated)"
            ),
            OpenApiParameter("min_score", OpenApiTypes.FLOAT),
            OpenApiParameter("max_score", OpenApiTypes.FLOAT),
            OpenApiParameter("partner", OpenApiTypes.STR, description="organization id or GLN, either side"),
            OpenApiParameter("lot", OpenApiTypes.STR),
            OpenApiParameter("gtin", OpenApiTypes.STR),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses=FlagOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        statuses = tuple(s for s in request.query_params.get("status", "").split(",") if s)
        unknown = [s for s in statuses if s not in Flag.Status.values]
        if unknown:
            raise ProblemError(
                status_code=400,
                title="The request is not valid",
                detail=f"Unknown status {', '.join(unknown)}; use {', '.join(Flag.Status.values)}.",
                errors=[{"field": "status", "detail": f"unknown: {', '.join(unknown)}"}],
            )
        filters = selectors.FlagFilters(
            statuses=statuses,
            min_score=_float(request, "min_score"),
            max_score=_float(request, "max_score"),
            partner=request.query_params.get("partner") or None,
            lot=request.query_params.get("lot") or None,
            gtin=request.query_params.get("gtin") or None,
            created_after=_time(request, "created_after"),
            created_before=_time(request, "created_before"),
        )
        paginator = FlagPagination()
        page = paginator.paginate_queryset(selectors.flag_list(filters=filters), request, view=self)
        return paginator.get_paginated_response(FlagOutputSerializer(page, many=True).data)


class FlagDetailApi(APIView):
    permission_classes = [IsOperatorOrStaff]

    @extend_schema(summary="One flag with its explanation", responses=FlagDetailSerializer)
    def get(self, request: Request, flag_id: int) -> Response:
        flag = selectors.flag_get(flag_id=flag_id)
        if flag is None:
            raise ProblemError(status_code=404, title="Not found", detail=f"There is no flag {flag_id}.")
        return Response(FlagDetailSerializer(flag).data)


class FlagDecisionInputSerializer(serializers.Serializer):
    # A decision moves a flag on; "open" is where scoring puts it (to look again, decide "investigating").
    status = serializers.ChoiceField(choices=DECISIONS)
    reason = serializers.CharField(help_text="Why: what was checked, with whom, what was found.")


class FlagDecideApi(APIView):
    permission_classes = [IsOperatorOrStaff]
    InputSerializer = FlagDecisionInputSerializer

    @extend_schema(
        operation_id="flag_decide",
        summary="Record a decision on a flag (signed-in compliance staff only; operator keys may not decide)",
        request=InputSerializer,
        responses={201: FlagDecisionOutputSerializer, 400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request: Request, flag_id: int) -> Response:
        if partner_of(request) is not None:
            raise ProblemError(
                status_code=403,
                title="Not allowed",
                detail="Decisions must be made by a signed-in person, not with an API key: "
                "sign in at /admin/login/ as compliance staff and decide in the web UI or with the session.",
            )
        flag = selectors.flag_get(flag_id=flag_id)
        if flag is None:
            raise ProblemError(status_code=404, title="Not found", detail=f"There is no flag {flag_id}.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with audit_reason(data.validated_data["reason"]):
                decision = services.flag_decide(
                    flag=flag,
                    status=data.validated_data["status"],
                    actor=request.user,
                    reason=data.validated_data["reason"],
                )
        except ValueError as exc:  # the service's own rules, should they ever go beyond the serializer's
            raise ProblemError(status_code=400, title="The request is not valid", detail=str(exc)) from None
        return Response(FlagDecisionOutputSerializer(decision).data, status=201)


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "version",
            "kind",
            "created_at",
            "created_by",
            "trained_to_seq",
            "data",
            "code_version",
            "metrics",
            "threshold",
            "checkpoint_sha256",
            "is_active",
            "activated_at",
            "activated_by",
        ]


class ModelVersionListApi(APIView):
    permission_classes = [IsOperatorOrStaff]

    @extend_schema(
        summary="Registered model versions (the active one scores)", responses=ModelVersionSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        data: Any = ModelVersionSerializer(selectors.model_versions()[:100], many=True).data
        return Response(data)
