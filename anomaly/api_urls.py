"""/api/... routes of the anomaly app (flags, models)."""

from django.urls import path

from . import apis

urlpatterns = [
    path("flags", apis.FlagListApi.as_view(), name="flag-list"),
    path("flags/<int:flag_id>", apis.FlagDetailApi.as_view(), name="flag-detail"),
    path("flags/<int:flag_id>/decisions", apis.FlagDecideApi.as_view(), name="flag-decide"),
    path("models", apis.ModelVersionListApi.as_view(), name="model-list"),
]
