from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provenance.ledger_selectors import checkpoint_json, checkpoint_latest
from provenance.ledger_services import LedgerIntegrityError, checkpoint_issue


class Command(BaseCommand):
    help = "Sign a checkpoint of the ledger now (when it grew since the last one) and print it as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="sign even if nothing was added since the last one")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            issued = checkpoint_issue(force=options["force"])
        except (ImproperlyConfigured, LedgerIntegrityError) as exc:
            raise CommandError(str(exc)) from exc
        checkpoint = issued or checkpoint_latest()
        if checkpoint is None:
            self.stderr.write("The ledger is empty and has no checkpoint; use --force to sign the empty tree.")
            return
        if issued is None:
            self.stderr.write(f"Nothing new since checkpoint of size {checkpoint.tree_size}; it is still the latest:")
        self.stdout.write(json.dumps(checkpoint_json(checkpoint), indent=2))
