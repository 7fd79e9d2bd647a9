"""HTTP API of the verifiable ledger and of custody traces (wire format: docs/ledger-format.md).

Keys, checkpoints and consistency proofs are public to every authenticated caller: they reveal no
event. Inclusion proofs and traces follow event visibility (selectors.events_visible_to).
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import ledger_selectors, selectors
from .apis import EPC_FORMATS, PROBLEM, epc_format_of, organization_scope, render_event  # shared with /epcis
from .auth import CanQuery
from .epcis.identifiers import IdentifierError
from .ledger.checkpoint import format_timestamp
from .ledger_services import LedgerIntegrityError, checkpoint_issue
from .models import CustodyEvent
from .problems import ProblemError

logger = logging.getLogger(__name__)

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# A trace is one response: beyond this, query /epcis/events and fetch proofs per event.
TRACE_MAX_EVENTS = 5000


@extend_schema_field(OpenApiTypes.DATETIME)
class Rfc3339Field(serializers.Field):
    """UTC with six fraction digits and Z: the one spelling the ledger uses for every instant."""

    def to_representation(self, value: Any) -> str:
        return format_timestamp(value)


class CheckpointSerializer(serializers.Serializer):
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="64 lowercase hex digits")
    timestamp = Rfc3339Field(help_text="When it was issued (not signed)")
    key_id = serializers.CharField(help_text="<key name>+<8 hex>, C2SP signed-note key ID")
    signature = serializers.CharField(help_text="base64 of the 64-byte Ed25519 signature over note")
    note = serializers.CharField(help_text="The signed text: <origin>\\n<tree size>\\n<base64 root>\\n")


class KeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    algorithm = serializers.ChoiceField(choices=["Ed25519"])
    public_key = serializers.CharField(help_text="base64 of the 32 raw bytes")


class InclusionProofSerializer(serializers.Serializer):
    leaf_index = serializers.IntegerField(help_text="0-based; equals the entry's seq")
    tree_size = serializers.IntegerField()
    entry = serializers.CharField(help_text="base64 of the entry bytes (provenance-ledger-entry/v1)")
    audit_path = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 audit path, hex")


class ConsistencyProofSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    consistency_path = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 proof, hex")


class TraceSerializer(serializers.Serializer):
    epcisDocument = serializers.JSONField(help_text="EPCISDocument with every event of the chain visible to you")
    bundle = serializers.JSONField(help_text="provenance-bundle/v1 proving each event against the latest checkpoint")


class LatestCheckpointApi(APIView):
    @extend_schema(
        operation_id="ledger_checkpoint_latest",
        responses={200: CheckpointSerializer, 401: PROBLEM, 404: PROBLEM},
        description="The most recent signed checkpoint (C2SP tlog-checkpoint note, Ed25519).",
    )
    def get(self, request: Request) -> Response:
        latest = ledger_selectors.checkpoint_latest()
        if latest is None:
            raise ProblemError(
                status_code=404,
                title="No checkpoint yet",
                detail="The ledger has not signed a checkpoint yet; one is issued once it has entries.",
            )
        return Response(CheckpointSerializer(latest).data)


class CheckpointPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class CheckpointListApi(generics.ListAPIView):
    serializer_class = CheckpointSerializer
    pagination_class = CheckpointPagination

    def get_queryset(self) -> Any:
        return ledger_selectors.checkpoints_filter(params=self.request.query_params)

    @extend_schema(
        operation_id="ledger_checkpoints",
        parameters=[
            OpenApiParameter("tree_size", int, description="Only checkpoints of exactly this size"),
            OpenApiParameter("min_tree_size", int, description="Only checkpoints of at least this size"),
            OpenApiParameter("max_tree_size", int, description="Only checkpoints of at most this size"),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Issued at or after (RFC 3339)"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Issued before (RFC 3339)"),
        ],
        responses={200: CheckpointSerializer(many=True), 400: PROBLEM, 401: PROBLEM},
        description="Every signed checkpoint, newest first, paginated (follow `next`).",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class KeysApi(APIView):
    @extend_schema(
        operation_id="ledger_keys",
        responses={200: KeySerializer(many=True), 401: PROBLEM},
        description="Every key that signed checkpoints, retired ones included. Pin keys out of band too: a key "
        "fetched from the server that signs proves little on its own.",
    )
    def get(self, request: Request) -> Response:
        return Response(ledger_selectors.signing_keys())


class InclusionProofApi(APIView):
    permission_classes = [CanQuery]

    @extend_schema(
        operation_id="ledger_inclusion_proof",
        parameters=[
            OpenApiParameter("event_id", str, required=True, description="The EPCIS eventID"),
            OpenApiParameter("tree_size", int, description="Tree to prove against (default: the latest checkpoint's)"),
        ],
        responses={200: InclusionProofSerializer, 400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
        description="The RFC 9162 inclusion proof of an event you may read. Leaf hash = SHA-256(0x00 ‖ entry).",
    )
    def get(self, request: Request) -> Response:
        event_id = request.query_params.get("event_id", "")
        if not event_id:
            raise ProblemError(
                status_code=400,
                title="Invalid query parameter",
                extra={"parameter": "event_id"},
                detail="The query parameter event_id (the EPCIS eventID) is required.",
            )
        tree_size = ledger_selectors.int_parameter(request.query_params, "tree_size")
        event = selectors.event_by_id(event_id=event_id, organization=organization_scope(request))
        if event is None:
            raise ProblemError(
                status_code=404,
                title="No such event",
                type_="epcisException:NoSuchResourceException",
                detail=f"No event {event_id!r} that your organization may read.",
            )
        event = CustodyEvent.objects.select_related("submitter").get(pk=event.pk)
        return Response(ledger_selectors.event_inclusion(event=event, tree_size=tree_size))


class ConsistencyProofApi(APIView):
    @extend_schema(
        operation_id="ledger_consistency_proof",
        parameters=[
            OpenApiParameter("first", int, required=True, description="Size of the earlier tree (>= 1)"),
            OpenApiParameter("second", int, required=True, description="Size of the later tree"),
        ],
        responses={200: ConsistencyProofSerializer, 400: PROBLEM, 401: PROBLEM},
        description="The RFC 9162 proof that the tree of size first is a prefix of the tree of size second.",
    )
    def get(self, request: Request) -> Response:
        first = ledger_selectors.int_parameter(request.query_params, "first", required=True)
        second = ledger_selectors.int_parameter(request.query_params, "second", required=True)
        assert first is not None
        assert second is not None
        return Response(ledger_selectors.ledger_consistency(first=first, second=second))


def _document(events: list[CustodyEvent], epc_format: str) -> dict[str, Any]:
    context: list[Any] = [EPCIS_CONTEXT]
    for event in events:
        for item in event.context:
            if item not in context:
                context.append(item)
    return {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": format_timestamp(timezone.now()),
        "epcisBody": {"eventList": [render_event(e, epc_format) for e in events]},
    }


def _trace(request: Request, chain: Any, what: str) -> Response:
    epc_format = epc_format_of(request)
    since_size = ledger_selectors.int_parameter(request.query_params, "since")
    visible = selectors.events_visible_to(organization=organization_scope(request))
    rows = list(
        visible.filter(seq__in=chain.values("seq")).select_related("submitter").order_by("seq")[: TRACE_MAX_EVENTS + 1]
    )
    if not rows:
        raise ProblemError(
            status_code=404, title="No custody events", detail=f"No event about {what} that your organization may read."
        )
    if len(rows) > TRACE_MAX_EVENTS:
        raise ProblemError(
            status_code=400,
            title="Trace too long",
            detail=f"The chain of {what} has more than {TRACE_MAX_EVENTS} events. Query /epcis/events "
            "(MATCH_epcClass or MATCH_epc) page by page and fetch /api/ledger/proofs/inclusion per event.",
        )
    checkpoint = ledger_selectors.checkpoint_latest()
    if checkpoint is None or checkpoint.tree_size <= rows[-1].seq:
        try:
            checkpoint_issue()  # the latest does not cover these events yet; a concurrent issuer may have won
        except LedgerIntegrityError:
            logger.exception("refused to sign a checkpoint for a trace")
            raise ProblemError(
                status_code=503,
                title="Ledger unavailable for proofs",
                detail="The ledger failed its integrity check, so no new checkpoint can be signed; the operator "
                "has been alerted. Earlier checkpoints and their proofs remain available.",
            ) from None
        checkpoint = ledger_selectors.checkpoint_latest()
    assert checkpoint is not None
    assert checkpoint.tree_size > rows[-1].seq
    since = None
    if since_size is not None:
        since = ledger_selectors.checkpoint_of_size(since_size)
        if since is None or since_size > checkpoint.tree_size:
            raise ProblemError(
                status_code=404,
                title="No such checkpoint",
                extra={"parameter": "since"},
                detail=f"No checkpoint of tree size {since_size} at or before the latest "
                f"({checkpoint.tree_size}); see /api/ledger/checkpoints.",
            )
    return Response(
        {
            "epcisDocument": _document(rows, epc_format),
            "bundle": ledger_selectors.trace_bundle(events=rows, checkpoint=checkpoint, since=since),
        }
    )


_TRACE_PARAMETERS = [
    OpenApiParameter("since", int, description="Also prove consistency from the checkpoint of this tree size"),
    OpenApiParameter("GS1-EPC-Format", str, OpenApiParameter.HEADER, enum=list(EPC_FORMATS)),
]
_TRACE_RESPONSES = {200: TraceSerializer, 400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: PROBLEM}
_TRACE_HELP = (
    " The `bundle` is a provenance-bundle/v1: save it and run `python -m provenance.ledger.verify BUNDLE.json` "
    "to check every event against the signed checkpoint offline."
)


class LotTraceApi(APIView):
    permission_classes = [CanQuery]

    @extend_schema(
        operation_id="lot_trace",
        parameters=[
            OpenApiParameter("gtin", str, OpenApiParameter.PATH, description="GTIN-14 with check digit"),
            OpenApiParameter("lot", str, OpenApiParameter.PATH, description="Lot number as printed"),
            *_TRACE_PARAMETERS,
        ],
        responses=_TRACE_RESPONSES,
        description="The chain of custody of a lot (its serials and the containers that held them) as an "
        "EPCISDocument, with proofs of every event." + _TRACE_HELP,
    )
    def get(self, request: Request, gtin: str, lot: str) -> Response:
        try:
            chain = selectors.lot_custody_chain(gtin=gtin, lot=lot)
        except IdentifierError as exc:
            raise ledger_selectors.identifier_problem(exc) from None
        return _trace(request, chain, f"lot {lot} of GTIN {gtin}")


class SerialTraceApi(APIView):
    permission_classes = [CanQuery]

    @extend_schema(
        operation_id="serial_trace",
        parameters=[
            OpenApiParameter("gtin", str, OpenApiParameter.PATH, description="GTIN-14 with check digit"),
            OpenApiParameter("serial", str, OpenApiParameter.PATH, description="Serial number as printed"),
            *_TRACE_PARAMETERS,
        ],
        responses=_TRACE_RESPONSES,
        description="The chain of custody of one package (its SGTIN and every container that held it) as an "
        "EPCISDocument, with proofs of every event." + _TRACE_HELP,
    )
    def get(self, request: Request, gtin: str, serial: str) -> Response:
        try:
            chain = ledger_selectors.serial_custody_chain(gtin=gtin, serial=serial)
        except IdentifierError as exc:
            raise ledger_selectors.identifier_problem(exc) from None
        return _trace(request, chain, f"serial {serial} of GTIN {gtin}")
