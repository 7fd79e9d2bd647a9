from django.urls import path

from . import apis, ledger_apis

epcis_urlpatterns = [
    path("capture", apis.CaptureApi.as_view(), name="epcis-capture"),
    path("capture/<str:capture_id>", apis.CaptureJobApi.as_view(), name="epcis-capture-job"),
    path("events", apis.EventsApi.as_view(), name="epcis-events"),
    path("events/<path:event_id>", apis.EventDetailApi.as_view(), name="epcis-event"),
]

api_urlpatterns: list = [
    path("ledger/checkpoints/latest", ledger_apis.LatestCheckpointApi.as_view(), name="ledger-checkpoint-latest"),
    path("ledger/checkpoints", ledger_apis.CheckpointListApi.as_view(), name="ledger-checkpoints"),
    path("ledger/keys", ledger_apis.KeysApi.as_view(), name="ledger-keys"),
    path("ledger/proofs/inclusion", ledger_apis.InclusionProofApi.as_view(), name="ledger-inclusion-proof"),
    path("ledger/proofs/consistency", ledger_apis.ConsistencyProofApi.as_view(), name="ledger-consistency-proof"),
    # Lot numbers and serials may contain '/', so they are <path:…>; the fixed /trace suffix ends them.
    path("lots/<str:gtin>/<path:lot>/trace", ledger_apis.LotTraceApi.as_view(), name="lot-trace"),
    path("serials/<str:gtin>/<path:serial>/trace", ledger_apis.SerialTraceApi.as_view(), name="serial-trace"),
]
