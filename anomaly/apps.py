from django.apps import AppConfig


class AnomalyConfig(AppConfig):
    name = "anomaly"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from provenance.signals import capture_committed

        from .tasks import on_capture_committed

        capture_committed.connect(on_capture_committed, dispatch_uid="anomaly-score-on-capture")
