from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provenance.ledger_verify import CHUNK, ledger_verify

_LISTED = 20


class Command(BaseCommand):
    help = (
        "Recompute every ledger leaf from the rows and every checkpoint root from those leaves; check seq "
        "continuity, the stored tree and every checkpoint signature. Exits non-zero naming the first sequence "
        "number that does not match and whether a row was changed, removed, inserted or reordered."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk", type=int, default=CHUNK, help="rows read per query (memory bound)")
        parser.add_argument(
            "--skip-bodies",
            action="store_true",
            help="do not re-hash each stored event against its received_sha256 (faster; entries and tree only)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_verify(chunk=options["chunk"], bodies=not options["skip_bodies"])
        summary = (
            f"{report.tree_size} entries, {report.rows_checked} rows, {report.nodes_checked} tree nodes, "
            f"{report.checkpoints_checked} checkpoints in {report.seconds:.1f} s"
        )
        first = report.first()
        if first is None:
            self.stdout.write(f"Ledger OK: {summary}.")
            return
        ordered = sorted(report.problems, key=lambda p: (p.seq is None, p.seq or 0))
        self.stderr.write(f"Ledger verification FAILED ({len(report.problems)} problem(s); {summary}):")
        for problem in ordered[:_LISTED]:
            self.stderr.write(f"  {problem}")
        if len(ordered) > _LISTED:
            self.stderr.write(f"  … and {len(ordered) - _LISTED} more")
        where = f"seq {first.seq}" if first.seq is not None else "a checkpoint"
        raise CommandError(f"ledger does not verify; first problem at {where}: {first.kind} — {first.detail}")
