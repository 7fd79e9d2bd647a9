"""Scores, flags and the model registry.

Everything here except the human decisions and the model audit trail can be rebuilt from the ledger:
scores and flags are driven by the watermark "score" (provenance.Watermark), like the transfers they
are about. A Score is unique per (transfer, model version), so scoring twice gives one row; a Flag is
unique per transfer and keeps its review status when a newer model rescores the transfer.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from provenance.models import Lot, Organization, Transfer

SCORE_WATERMARK = "score"


class ModelVersion(models.Model):
    """A registered, trained scorer: an artifact with a version, metrics, the data it saw and a checksum."""

    version = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=24, help_text="The production scorer inside the bundle: lightgbm, gnn, stack, …")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    trained_to_seq = models.BigIntegerField(
        help_text="The ledger watermark (next seq) the label-free part was fitted to."
    )
    data = models.JSONField(
        default=dict, help_text="Which data each part saw (simulated seeds, deployment history, labels)."
    )
    code_version = models.CharField(max_length=80, blank=True)
    metrics = models.JSONField(default=dict)
    threshold = models.FloatField(help_text="Operating threshold: a transfer scoring at or above it is flagged.")
    checkpoint_path = models.CharField(max_length=500)
    checkpoint_sha256 = models.CharField(max_length=64)
    format_version = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.CharField(max_length=150, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model_version")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.version}"


class ModelAudit(models.Model):
    """Append-only trail of registry actions: register, activate, rollback, deactivate."""

    class Action(models.TextChoices):
        REGISTER = "register"
        ACTIVATE = "activate"
        ROLLBACK = "rollback"
        DEACTIVATE = "deactivate"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="audit")
    previous_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.model_version.version} by {self.actor}"


class ScoringRun(models.Model):
    """One pass of the scorer over the transfers derived since the watermark (visible to operators)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    trigger = models.CharField(max_length=16, help_text="kick (after capture), beat (sweep), command, test")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    from_seq = models.BigIntegerField()
    to_seq = models.BigIntegerField(null=True, blank=True)
    transfers_scored = models.IntegerField(default=0)
    flags_raised = models.IntegerField(default=0)
    flags_updated = models.IntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"scoring run {self.pk} [{self.from_seq}, {self.to_seq}) {self.status}"


class Score(models.Model):
    """The score of one transfer by one model version (null: rules only). Unique per pair."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    score = models.FloatField()
    rule_hits = models.JSONField(default=list)
    at_seq = models.BigIntegerField(help_text="The transfer's derived_at_seq when it was scored.")
    run = models.ForeignKey(ScoringRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    scored_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transfer", "model_version"], name="score_unique_per_model"),
            models.UniqueConstraint(
                fields=["transfer"], condition=Q(model_version__isnull=True), name="score_unique_rules_only"
            ),
        ]

    def __str__(self) -> str:
        return f"transfer {self.transfer_id}: {self.score:.3f}"


class Flag(models.Model):
    """A suspicious transfer for a compliance officer: score, reasons, explanation, model and events."""

    class Status(models.TextChoices):
        OPEN = "open"
        INVESTIGATING = "investigating"
        CLEARED = "cleared"
        SUSPECT = "suspect"

    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, related_name="flag")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    score = models.FloatField(db_index=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    scored_by = models.CharField(max_length=200, help_text="Which scorer produced the score, or 'rules only'.")
    reasons = models.JSONField(default=list, help_text="Rule hits: code, title, reference, detail.")
    explanation = models.JSONField(default=dict, help_text="Features and neighbouring transfers that drove the score.")
    event_ids = models.JSONField(default=list, help_text="eventIDs of the ledger events this flag concerns.")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    from_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_organization = models.ForeignKey(Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-score", "-id"]

    def __str__(self) -> str:
        return f"flag {self.pk} on transfer {self.transfer_id} ({self.status}, {self.score:.2f})"


class FlagDecision(models.Model):
    """A reviewer's decision on a flag (append-only); suspect/cleared decisions are labels for retraining."""

    flag = models.ForeignKey(Flag, on_delete=models.PROTECT, related_name="decisions")
    status = models.CharField(max_length=16, choices=Flag.Status.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.flag_id} -> {self.status}"


# The database keeps the history of registry entries and flags (PostgreSQL triggers, as for the partners
# in provenance/models.py): who activated a model, who moved a flag, whatever made the change.
import pghistory  # noqa: E402

from provenance.models import audited  # noqa: E402

ModelVersionAuditEvent = audited(ModelVersion, "ModelVersionAuditEvent", app_label="anomaly")
# A flag's score is refreshed by every rescoring; the trail keeps its creation and its status changes.
FlagAuditEvent = audited(
    Flag,
    "FlagAuditEvent",
    pghistory.InsertEvent(),
    pghistory.UpdateEvent("status_change", condition=pghistory.AnyChange("status")),
    pghistory.DeleteEvent(),
    app_label="anomaly",
    exclude=["explanation", "updated_at"],
)
