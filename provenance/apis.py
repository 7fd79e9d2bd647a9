"""The EPCIS 2.0 REST binding (capture, events) and the service's health check. Views stay thin."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .auth import CanCapture, CanQuery, partner_of
from .epcis.normalize import to_event_json
from .models import CaptureJob, CompanyPrefix, CustodyEvent, Organization
from .problems import ProblemError

JSON_TYPES = ("application/json", "application/ld+json")
EPC_FORMATS = ("No_Preference", "Always_GS1_Digital_Link", "Always_EPC_URN", "Never_Translates")

PROBLEM = OpenApiResponse(OpenApiTypes.OBJECT, description="application/problem+json (RFC 7807)")


def _epcis_headers() -> dict[str, str]:
    return {
        "GS1-EPCIS-Version": "2.0.0",
        "GS1-CBV-Version": "2.0.0",
        "GS1-EPCIS-Capture-Limit": str(settings.EPCIS_CAPTURE_LIMIT),
        "GS1-EPCIS-Capture-File-Size-Limit": str(settings.EPCIS_CAPTURE_FILE_SIZE_LIMIT),
        "GS1-Capture-Error-Behaviour": "all",
        "GS1-EPC-Format": "No_Preference",
        "GS1-Extensions": "",
    }


def _json_depth_ok(value: Any, limit: int) -> bool:
    # Iterative, so a hostile document cannot exhaust the stack here either.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def read_json_body(request: Request) -> tuple[Any, bytes]:
    """The request body as JSON, refused clearly when it is not acceptable (never a 5xx)."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise ProblemError(
            status_code=415,
            title="Unsupported media type",
            detail=f"The body must be application/json or application/ld+json, not {content_type or 'absent'!r}.",
        )
    declared = request.META.get("CONTENT_LENGTH")
    limit = settings.EPCIS_CAPTURE_FILE_SIZE_LIMIT
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    raw: bytes = request.body
    if len(raw) > limit:
        raise _too_large(len(raw), limit)
    try:
        document = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ProblemError(
            status_code=400,
            title="Malformed JSON",
            detail=f"The body is not valid UTF-8 JSON{position}: {exc}. Fix the syntax and send it again.",
        ) from None
    if not _json_depth_ok(document, settings.EPCIS_MAX_JSON_DEPTH):
        raise _too_deep()
    return document, raw


def _too_large(size: int, limit: int) -> ProblemError:
    return ProblemError(
        status_code=413,
        title="Document too large",
        detail=f"The body is {size} bytes; this service accepts at most {limit} bytes per request "
        "(GS1-EPCIS-Capture-File-Size-Limit). Split the document and send the parts.",
    )


def _too_deep() -> ProblemError:
    return ProblemError(
        status_code=400,
        title="Document nested too deeply",
        detail=f"JSON nesting deeper than {settings.EPCIS_MAX_JSON_DEPTH} levels is refused; EPCIS documents "
        "never need that much. Flatten the structure.",
    )


def organization_scope(request: Request) -> Organization | None:
    """The caller's organization for visibility, or None when the caller may see everything."""
    partner = partner_of(request)
    if partner is None or partner.is_operator:
        return None
    return partner.organization


def _prefix_length(digits: str) -> int | None:
    for prefix in CompanyPrefix.objects.filter(prefix__in=[digits[:n] for n in range(6, 13)]).values_list(
        "prefix", flat=True
    ):
        return len(prefix)
    return None


def render_event(event: CustodyEvent, epc_format: str) -> dict[str, Any]:
    body = to_event_json(event.body, epc_format, _prefix_length)
    body["eventID"] = event.event_id
    body["recordTime"] = event.record_time.isoformat().replace("+00:00", "Z")
    return body


def epc_format_of(request: Request) -> str:
    value = request.headers.get("GS1-EPC-Format", "No_Preference")
    if value not in EPC_FORMATS:
        raise ProblemError(
            status_code=400,
            title="Invalid GS1-EPC-Format",
            detail=f"GS1-EPC-Format must be one of {', '.join(EPC_FORMATS)}; got {value!r}.",
        )
    return value


def _behaviour(request: Request) -> str:
    value = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").strip().lower()
    if value not in CaptureJob.Behaviour.values:
        raise ProblemError(
            status_code=400,
            title="Invalid GS1-Capture-Error-Behaviour",
            detail=f"GS1-Capture-Error-Behaviour must be 'rollback' or 'proceed'; got {value!r}.",
        )
    return value


def job_json(job: CaptureJob) -> dict[str, Any]:
    data: dict[str, Any] = {
        "captureID": str(job.id),
        "createdAt": job.created_at.isoformat().replace("+00:00", "Z"),
        "running": job.running,
        "success": job.success,
        "captureErrorBehaviour": job.behaviour,
        "errors": job.errors,
        "eventCount": job.event_count,
        "recordedCount": job.recorded_count,
    }
    if job.finished_at:
        data["finishedAt"] = job.finished_at.isoformat().replace("+00:00", "Z")
    if job.first_seq is not None:
        data["ledgerSequence"] = {"first": job.first_seq, "last": job.last_seq}
    return data


class CaptureApi(APIView):
    """POST an EPCISDocument for capture; GET lists your capture jobs."""

    permission_classes = [CanCapture]
    parser_classes: list[Any] = []

    @extend_schema(
        operation_id="epcis_capture",
        request={"application/ld+json": OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("GS1-Capture-Error-Behaviour", str, OpenApiParameter.HEADER, enum=["rollback", "proceed"]),
        ],
        responses={
            202: OpenApiTypes.OBJECT,
            400: PROBLEM,
            401: PROBLEM,
            403: PROBLEM,
            409: PROBLEM,
            413: PROBLEM,
            415: PROBLEM,
            422: PROBLEM,
        },
        description="Capture an EPCIS 2.0 document. 202 with Location of the capture job; refused documents "
        "get a problem+json naming the event index and field.",
    )
    def post(self, request: Request) -> Response:
        partner = partner_of(request)
        assert partner is not None  # guaranteed by CanCapture
        behaviour = _behaviour(request)
        document, raw = read_json_body(request)
        if not isinstance(document, dict):
            raise ProblemError(
                status_code=400,
                title="Not an EPCIS document",
                detail="The body must be a JSON object of type EPCISDocument.",
            )
        job = services.custody_events_capture(
            document=document,
            organization=partner.organization,
            api_key=partner.api_key,
            behaviour=behaviour,
            raw=raw,
        )
        response = Response(job_json(job), status=202)
        response["Location"] = f"/epcis/capture/{job.id}"
        for key, value in _epcis_headers().items():
            response[key] = value
        return response

    @extend_schema(operation_id="epcis_capture_jobs", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        partner = partner_of(request)
        assert partner is not None
        jobs = CaptureJob.objects.filter(organization=partner.organization).order_by("-created_at")[:100]
        return Response([job_json(j) for j in jobs])

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        response = Response(status=204)
        response["Allow"] = "GET, POST, OPTIONS"
        for key, value in _epcis_headers().items():
            response[key] = value
        return response


class CaptureJobApi(APIView):
    permission_classes = [CanCapture]

    @extend_schema(operation_id="epcis_capture_job", responses={200: OpenApiTypes.OBJECT, 404: PROBLEM})
    def get(self, request: Request, capture_id: str) -> Response:
        partner = partner_of(request)
        assert partner is not None
        job = selectors.capture_job_get(
            job_id=capture_id, organization=None if partner.is_operator else partner.organization
        )
        if job is None:
            raise ProblemError(
                status_code=404,
                title="No such capture job",
                detail=f"No capture job {capture_id} of your organization exists.",
            )
        return Response(job_json(job))


def _query_document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": _now_iso(),
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}},
    }


def _now_iso() -> str:
    from django.utils import timezone

    return timezone.now().isoformat().replace("+00:00", "Z")


class EventsApi(APIView):
    """GET: query events (EPCIS simple event query). POST: capture one event (201)."""

    parser_classes: list[Any] = []

    def get_permissions(self) -> list[Any]:
        return [CanCapture()] if self.request.method == "POST" else [CanQuery()]

    @extend_schema(
        operation_id="epcis_events_query",
        parameters=[
            OpenApiParameter(name, str, OpenApiParameter.QUERY, required=False)
            for name in (
                "eventType",
                "GE_eventTime",
                "LT_eventTime",
                "GE_recordTime",
                "LT_recordTime",
                "EQ_action",
                "EQ_bizStep",
                "EQ_disposition",
                "EQ_readPoint",
                "EQ_bizLocation",
                "EQ_eventID",
                "MATCH_epc",
                "MATCH_anyEPC",
                "MATCH_parentID",
                "MATCH_inputEPC",
                "MATCH_outputEPC",
                "MATCH_epcClass",
                "MATCH_anyEPCClass",
                "EQ_source_owning_party",
                "EQ_source_possessing_party",
                "EQ_source_location",
                "EQ_destination_owning_party",
                "EQ_destination_possessing_party",
                "EQ_destination_location",
                "perPage",
                "nextPageToken",
            )
        ]
        + [OpenApiParameter("GS1-EPC-Format", str, OpenApiParameter.HEADER, enum=list(EPC_FORMATS))],
        responses={200: OpenApiTypes.OBJECT, 400: PROBLEM, 401: PROBLEM, 403: PROBLEM},
        description="Events visible to the caller, in ledger order, as an EPCISQueryDocument. Identifiers in "
        "URN or Digital Link form both match. Paginated with perPage and nextPageToken (Link header).",
    )
    def get(self, request: Request) -> Response:
        params = selectors.as_mapping(request.query_params)
        epc_format = epc_format_of(request)
        qs = selectors.events_filter(
            params=params, queryset=selectors.events_visible_to(organization=organization_scope(request))
        )
        page = selectors.events_page(queryset=qs, params=params, max_per_page=settings.EPCIS_QUERY_MAX_PER_PAGE)
        response = Response(_query_document([render_event(e, epc_format) for e in page.events]))
        response["GS1-EPCIS-Version"] = "2.0.0"
        if page.next_token:
            query = request.query_params.copy()
            query["nextPageToken"] = page.next_token
            response["Link"] = f'</epcis/events?{query.urlencode()}>; rel="next"'
            response["GS1-Next-Page-Token"] = page.next_token
        return response

    @extend_schema(
        operation_id="epcis_event_capture",
        request={"application/ld+json": OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={201: OpenApiTypes.OBJECT, 400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM},
        description="Capture a single EPCIS event synchronously (201 with Location of the event).",
    )
    def post(self, request: Request) -> Response:
        partner = partner_of(request)
        assert partner is not None
        event, raw = read_json_body(request)
        if not isinstance(event, dict) or "type" not in event:
            raise ProblemError(
                status_code=400,
                title="Not an EPCIS event",
                detail="The body must be one EPCIS event object with a 'type'.",
            )
        context = event.pop("@context", None) or ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
        document = {
            "@context": context,
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": _now_iso(),
            "epcisBody": {"eventList": [event]},
        }
        job = services.custody_events_capture(
            document=document,
            organization=partner.organization,
            api_key=partner.api_key,
            raw=raw,
        )
        recorded = CustodyEvent.objects.filter(capture_job_id=job.id).order_by("seq").first()
        if recorded is None and job.first_seq is not None:  # an identical resend recorded by another job
            recorded = CustodyEvent.objects.filter(seq=job.first_seq).first()
        assert recorded is not None
        response = Response(render_event(recorded, "No_Preference"), status=201)
        response["Location"] = f"/epcis/events/{quote(recorded.event_id, safe='')}"
        return response


class EventDetailApi(APIView):
    permission_classes = [CanQuery]

    @extend_schema(
        operation_id="epcis_event_get",
        parameters=[OpenApiParameter("GS1-EPC-Format", str, OpenApiParameter.HEADER, enum=list(EPC_FORMATS))],
        responses={200: OpenApiTypes.OBJECT, 404: PROBLEM},
    )
    def get(self, request: Request, event_id: str) -> Response:
        event = selectors.event_by_id(event_id=event_id, organization=organization_scope(request))
        if event is None:
            raise ProblemError(
                status_code=404,
                title="No such event",
                detail=f"No event {event_id!r} that your organization may read. URL-encode the eventID.",
                type_="epcisException:NoSuchResourceException",
            )
        return Response(render_event(event, epc_format_of(request)))


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="healthz",
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.CharField(),
                    "database": serializers.DictField(),
                    "broker": serializers.DictField(),
                },
            ),
            503: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request: Request) -> Response:
        database = _check_database()
        broker = _check_broker()
        ok = database["ok"] and broker["ok"]
        return Response(
            {"status": "ok" if ok else "degraded", "database": database, "broker": broker}, status=200 if ok else 503
        )


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)[:200]}


def _check_broker() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "kind": "in-process (no REDIS_URL): tasks run in the web process"}
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        return {"ok": True, "kind": "redis"}
    except Exception as exc:
        return {"ok": False, "kind": "redis", "error": str(exc)[:200]}


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    from .problems import problem_body, problem_response

    return problem_response(
        problem_body(
            status_code=404, title="Not found", detail=f"There is no resource at {request.path}. See /api/docs/."
        )
    )


def server_error(request: HttpRequest) -> JsonResponse:
    from .problems import problem_body, problem_response

    return problem_response(
        problem_body(
            status_code=500,
            title="Internal error",
            detail="The service failed to handle this request; nothing was recorded "
            "unless a capture job says so. Retry, and report it if it persists.",
        )
    )
