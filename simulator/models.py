"""Ground truth of simulated runs, kept apart from the ledger: used only for training and evaluation.

Nothing here is referenced by the ledger or by any event; a label names an event by its eventID.
No foreign keys into other apps, so this app's migrations stand alone.
"""

from __future__ import annotations

from django.db import models


class SimulationRun(models.Model):
    """One generated network (seed + scale + scenario settings) and its manifest."""

    run = models.CharField(max_length=100, unique=True)
    seed = models.BigIntegerField()
    scale = models.CharField(max_length=16)
    manifest = models.JSONField(default=dict)
    loaded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.run


class ScenarioLabel(models.Model):
    """One labelled event of an injected anomaly scenario (event level; transfer_key groups a transfer)."""

    event_id = models.CharField(max_length=300, db_index=True)
    scenario = models.CharField(max_length=40, db_index=True)
    incident = models.CharField(max_length=60)
    role = models.CharField(
        max_length=40, help_text="What the event is within the incident (ship, receive, dispense...)."
    )
    transfer_key = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="despatch-advice URI of the shipment, for transfer labels"
    )
    start_time = models.DateTimeField(help_text="When the incident started.")
    event_time = models.CharField(max_length=40, help_text="eventTime as written in the event.")
    camouflaged = models.BooleanField(default=False)
    subtlety = models.FloatField(default=0.5)
    seed = models.BigIntegerField()
    run = models.CharField(max_length=100, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "event_id", "incident", "role"], name="scenariolabel_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scenario} {self.role} {self.event_id}"


class LookalikeTag(models.Model):
    """A benign event that resembles an anomaly (return, void, correction, late upload...).

    For false-positive analysis per look-alike kind.
    """

    event_id = models.CharField(max_length=300, db_index=True)
    kind = models.CharField(max_length=40, db_index=True)
    transfer_key = models.CharField(max_length=200, blank=True)
    run = models.CharField(max_length=100, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "event_id", "kind"], name="lookalike_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id}"
