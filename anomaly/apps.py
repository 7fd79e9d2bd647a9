from django.apps import AppConfig


class AnomalyConfig(AppConfig):
    name = "anomaly"
    default_auto_field = "django.db.models.BigAutoField"
