"""`python manage.py evaluate --seeds 1,2,3,4,5 [--train-seeds 101,102,103] [--scale small]`

Evaluates every scorer side by side on simulated networks it did not train on (docs/evaluation.md): a time
split (train on the past of the training networks, test on the future of held-out networks), leave-one-
scenario-out, and the camouflaged incidents. Writes docs/evaluation.md, docs/evaluation.json and PR curves.

``--export-dataset PATH`` (internal) replays this database's ledger and writes its labelled transfers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


def seed_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


class Command(BaseCommand):
    help = "Evaluate rules, baselines and graph models on held-out simulated networks; write docs/evaluation.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seeds", default="1-5", help="held-out test networks (e.g. 1-5 or 1,2,3)")
        parser.add_argument("--train-seeds", default="301-308", help="training networks (never tested on)")
        parser.add_argument(
            "--train-rate-scale",
            type=float,
            default=20.0,
            help="incident rate multiplier of the training networks (more positives to learn from)",
        )
        parser.add_argument(
            "--val-seeds",
            default="101-105",
            help="validation networks at the ordinary incident rate (early stopping, threshold)",
        )
        parser.add_argument("--scale", default="tiny", help="simulator scale of every network")
        parser.add_argument(
            "--test-from",
            type=float,
            default=0.6,
            help="the test period starts at this share of each network's time span",
        )
        parser.add_argument("--models", default="all", help="comma-separated subset of the model ladder")
        parser.add_argument("--no-loso", action="store_true", help="skip leave-one-scenario-out")
        parser.add_argument(
            "--loso-gnn-epochs",
            type=int,
            default=0,
            help="also retrain the GNN without each scenario, for at most this many epochs (0: trees only)",
        )
        parser.add_argument("--out", type=Path, default=None, help="where the report goes (default: docs/)")
        parser.add_argument("--data-dir", type=Path, default=None, help="cache of simulated datasets")
        parser.add_argument("--max-epochs", type=int, default=None, help="GNN epochs (default from the config)")
        parser.add_argument("--export-dataset", type=Path, default=None, help=argparse_suppress())

    def handle(self, *args: Any, **options: Any) -> None:
        if options["export_dataset"]:
            self._export(options["export_dataset"])
            return
        from anomaly.evaluation import run_evaluation

        data_dir = options["data_dir"] or Path(settings.MODEL_DIR) / "datasets"
        out = options["out"] or Path(settings.BASE_DIR) / "docs"
        try:
            run_evaluation(
                test_seeds=seed_list(options["seeds"]),
                train_seeds=seed_list(options["train_seeds"]),
                val_seeds=seed_list(options["val_seeds"]),
                train_rate_scale=options["train_rate_scale"],
                scale=options["scale"],
                data_dir=data_dir,
                out_dir=out,
                test_from=options["test_from"],
                models=options["models"],
                loso=not options["no_loso"],
                loso_gnn_epochs=options["loso_gnn_epochs"],
                max_epochs=options["max_epochs"],
                log=self._log,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _log(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _export(self, path: Path) -> None:
        from anomaly.datasets import export_dataset
        from provenance.derive import ledger_derive

        started = time.monotonic()
        ledger_derive()
        self.stdout.write(f"derived in {time.monotonic() - started:.1f}s")
        meta = export_dataset(path, source="simulated")
        self.stdout.write(f"{meta['transfers']} transfers ({meta['positives']} labelled) -> {path}")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS
