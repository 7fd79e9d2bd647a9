"""/api/... routes of the anomaly app (flags, models)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
