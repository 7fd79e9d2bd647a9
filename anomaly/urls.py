"""The compliance UI (signed-in staff): overview, flags, a flag and its decisions."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("flags/", views.flag_list, name="flag-ui-list"),
    path("flags/<int:flag_id>/", views.flag_detail, name="flag-ui-detail"),
]
