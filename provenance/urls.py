from django.urls import path

from . import apis

epcis_urlpatterns = [
    path("capture", apis.CaptureApi.as_view(), name="epcis-capture"),
    path("capture/<str:capture_id>", apis.CaptureJobApi.as_view(), name="epcis-capture-job"),
    path("events", apis.EventsApi.as_view(), name="epcis-events"),
    path("events/<path:event_id>", apis.EventDetailApi.as_view(), name="epcis-event"),
]

api_urlpatterns: list = []
