from django.contrib import admin

from anomaly.models import Flag, FlagDecision, ModelAudit, ModelVersion, Score, ScoringRun


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "score", "scored_by", "transfer", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("transfer", "lot", "from_organization", "to_organization", "model_version")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "kind", "is_active", "threshold", "trained_to_seq", "created_at", "activated_by")
    # Activation and rollback are audited actions (train_model --activate / services), not admin edits.
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ("id", "trigger", "status", "from_seq", "to_seq", "transfers_scored", "flags_raised", "started_at")
    list_filter = ("status", "trigger")


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ModelAudit)
class ModelAuditAdmin(_ReadOnly):
    list_display = ("at", "action", "model_version", "previous_version", "actor")


@admin.register(FlagDecision)
class FlagDecisionAdmin(_ReadOnly):
    list_display = ("at", "flag", "status", "actor")


@admin.register(Score)
class ScoreAdmin(_ReadOnly):
    list_display = ("transfer", "model_version", "score", "scored_at")
