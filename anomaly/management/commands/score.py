"""`python manage.py score`: what the scoring task does, synchronously, with progress."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from anomaly.models import SCORE_WATERMARK
from provenance.models import Watermark


class Command(BaseCommand):
    help = "Derive transfers from the ledger and score every transfer recorded since the scoring watermark."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rescore", action="store_true", help="score every transfer again (watermark to 0)")
        parser.add_argument("--sweep", action="store_true", help="also rescore shipments overdue for receipt")

    def handle(self, *args: Any, **options: Any) -> None:
        from anomaly.graph import shipment_graph
        from anomaly.services import active_model, transfers_score
        from provenance.derive import ledger_derive

        started = time.monotonic()
        derived = ledger_derive()
        self.stdout.write(f"Derived {derived} ledger entries.")
        if options["rescore"]:
            Watermark.objects.update_or_create(name=SCORE_WATERMARK, defaults={"seq": 0})
        model = active_model()
        self.stdout.write(
            f"Scorer: {f'{model.kind} {model.version}' if model else 'rules only (no model is active yet)'}"
        )

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  replaying the ledger: {done}/{total}", ending="\r")
            self.stdout.flush()

        shipment_graph(progress=progress)
        self.stdout.write("")
        total = flags = 0
        for run in transfers_score(trigger="command", age_open=options["sweep"]):
            total += run.transfers_scored
            flags += run.flags_raised
            self.stdout.write(
                f"  run {run.pk}: ledger [{run.from_seq}, {run.to_seq}) {run.transfers_scored} transfers, "
                f"{run.flags_raised} flags raised, {run.flags_updated} updated"
            )
        self.stdout.write(
            self.style.SUCCESS(f"Scored {total} transfers, raised {flags} flags in {time.monotonic() - started:.1f}s.")
        )
