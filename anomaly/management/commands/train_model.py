"""`python manage.py train_model [--scale tiny --seeds 201-203 --rate-scale 4] [--since SEQ|DATE] [--activate]`

Registers a new model version. A deployment starts with no labels of its own, so:
- the supervised models (LightGBM, the heterogeneous GNN) train on simulated networks (built once each in a
  database of their own and cached under MODEL_DIR/datasets) plus any transfers of this deployment that
  compliance staff decided (suspect/cleared) or the simulator labelled;
- the label-free models (link prediction, isolation forest) fit on this deployment's own history (``--since``
  limits it to recent transfers);
and the registry entry says which data each part saw. ``--activate`` makes it the production scorer
(recorded in the audit trail); otherwise activate it later with ``--activate-version``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from anomaly.management.commands.evaluate import seed_list


def code_version() -> str:
    root = Path(settings.BASE_DIR)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "anomaly"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Command(BaseCommand):
    help = "Train the scorers (supervised on simulated networks, label-free on this ledger) and register a version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", default="tiny", help="scale of the simulated training networks")
        parser.add_argument("--seeds", default="301-304", help="simulator seeds of the training networks")
        parser.add_argument(
            "--rate-scale",
            type=float,
            default=20.0,
            help="incident rate multiplier of the training networks (more positives to learn from)",
        )
        parser.add_argument("--no-simulated", action="store_true", help="train on this deployment's labels only")
        parser.add_argument(
            "--use-simulator-labels",
            action="store_true",
            help="also learn from simulator ground truth found in this ledger (a simulated deployment)",
        )
        parser.add_argument(
            "--since",
            default=None,
            help="fit the label-free part on transfers since this ledger seq or date (YYYY-MM-DD)",
        )
        parser.add_argument("--components", default="lightgbm_all,lightgbm_own,gnn,iforest,linkpred")
        parser.add_argument(
            "--production",
            default=None,
            help="the scorer that decides flags (default: the winner in docs/evaluation.json)",
        )
        parser.add_argument("--max-epochs", type=int, default=None)
        parser.add_argument("--fast-dev-run", action="store_true", help="one batch per step (smoke tests)")
        parser.add_argument("--activate", action="store_true", help="make the new version the production scorer")
        parser.add_argument("--activate-version", default=None, help="only activate an already registered version")
        parser.add_argument("--rollback", action="store_true", help="only roll back to the previously active version")
        parser.add_argument("--reason", default="", help="why (recorded with activation or rollback)")
        parser.add_argument("--actor", default=None, help="who (default: the system user running the command)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        import getpass

        from anomaly import services
        from anomaly.models import ModelVersion

        actor = o["actor"] or f"{getpass.getuser()} (train_model)"
        if o["rollback"]:
            try:
                target = services.model_version_rollback(
                    actor=actor, reason=o["reason"] or "rollback from the command line"
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Rolled back; active now: {target.version if target else 'none (rules only)'}")
            return
        if o["activate_version"]:
            mv = ModelVersion.objects.filter(version=o["activate_version"]).first()
            if mv is None:
                raise CommandError(f"No registered version {o['activate_version']!r}; see /api/models.")
            services.model_version_activate(model_version=mv, actor=actor, reason=o["reason"])
            self.stdout.write(f"Activated {mv.version}.")
            return
        self._train(o, actor)

    def _log(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _train(self, o: dict[str, Any], actor: str) -> None:
        from anomaly import services
        from anomaly.datasets import export_dataset, prepare_simulated
        from anomaly.ml.config import TrainConfig
        from anomaly.ml.data import Dataset
        from anomaly.ml.inference import save_bundle
        from anomaly.ml.train import train_label_free, train_supervised
        from provenance.derive import ledger_derive

        started = time.monotonic()
        components = tuple(c.strip() for c in o["components"].split(",") if c.strip())
        cfg = TrainConfig(components=components, progress=not o["no_progress"], fast_dev_run=o["fast_dev_run"])
        if o["max_epochs"] is not None:
            cfg.max_epochs = o["max_epochs"]
            cfg.link_epochs = min(cfg.link_epochs, o["max_epochs"])
        model_dir = Path(settings.MODEL_DIR)
        version = timezone.now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        folder = model_dir / version
        # --- this deployment's ledger
        self._log("Deriving and replaying this ledger ...")
        ledger_derive()
        own_path = folder / "deployment.npz"
        own_meta = export_dataset(own_path, source="deployment")
        own = Dataset.load(own_path, name="deployment")
        self._log(
            f"  {own_meta['transfers']} transfers, ledger watermark {own_meta['ledger_seq']}, "
            f"{own_meta['positives']} labelled ({own_meta['labelled_by_compliance']} by compliance staff)"
        )
        # --- supervised: simulated networks (+ this deployment's labelled transfers)
        networks = []
        data: dict[str, Any] = {"supervised": {"networks": []}, "label_free": {}}
        if not o["no_simulated"]:
            extra = ["--rate-scale", f"{o['rate_scale']:g}"] if o["rate_scale"] != 1.0 else []
            for seed in seed_list(o["seeds"]):
                self._log(f"Simulated training network: seed {seed}, scale {o['scale']} (built once, then cached) ...")
                path = prepare_simulated(
                    seed=seed, scale=o["scale"], root=model_dir / "datasets", extra=extra, log=self._log
                )
                ds = Dataset.load(path)
                networks.append((ds.arrays, np.arange(len(ds))))
                data["supervised"]["networks"].append(
                    {
                        "source": "simulated",
                        "seed": seed,
                        "scale": o["scale"],
                        "rate_scale": o["rate_scale"],
                        "transfers": len(ds),
                        "positives": int(ds.y.sum()),
                    }
                )
        # This deployment's own labels: compliance decisions always; the simulator's ground truth only when asked
        # (a demo ledger is itself simulated, and a model trained on the network it then scores proves nothing).
        source = own.arrays["label_source"]
        use = (source == "compliance") | ((source == "simulator") if o["use_simulator_labels"] else False)
        labelled = np.flatnonzero(use)
        if len(labelled):
            # with compliance decisions only, the unreviewed transfers are not known to be clean: leave them out
            edges = np.arange(len(own)) if o["use_simulator_labels"] else labelled
            arrays = dict(own.arrays)
            arrays["label"] = np.where(use, own.arrays["label"], 0).astype(own.arrays["label"].dtype)
            networks.append((arrays, edges))
            data["supervised"]["networks"].append(
                {
                    "source": "this deployment",
                    "labels": "simulator ground truth and compliance decisions"
                    if o["use_simulator_labels"]
                    else "compliance decisions",
                    "transfers": len(edges),
                    "positives": int(arrays["label"][edges].sum()),
                }
            )
        supervised: dict[str, Any] = {}
        wanted = [c for c in components if c in ("lightgbm_all", "lightgbm_own", "gnn")]
        if wanted and networks:
            self._log(f"Training {', '.join(wanted)} on {len(networks)} labelled network(s) ...")
            supervised = train_supervised(networks, cfg, log=self._log)
        elif wanted:
            self._log("No labelled data: only the label-free models are trained.")
        # --- label-free on this deployment's own history
        since = np.arange(len(own))
        if o["since"]:
            since = self._since(own, o["since"])
        data["label_free"] = {
            "source": "this deployment's ledger",
            "transfers": len(since),
            "to_seq": own_meta["ledger_seq"],
            "since": o["since"],
        }
        label_free = train_label_free(own.arrays, since, cfg, log=self._log) if len(since) else {}
        # --- bundle, registry
        comps = {
            k: v
            for k, v in {**supervised, **label_free}.items()
            if k in ("lightgbm_all", "lightgbm_own", "gnn", "iforest", "linkpred")
        }
        if not comps:
            raise CommandError("Nothing was trained: no labelled networks and no history of this ledger.")
        production = o["production"] or self._production_choice(comps)
        if production == "blend" and not {"lightgbm_all", "gnn"} <= set(comps):
            production = "lightgbm_all" if "lightgbm_all" in comps else next(iter(comps))
        if production not in comps and production != "blend":
            raise CommandError(f"--production {production} was not trained (trained: {', '.join(comps)})")
        thresholds = dict(supervised.get("thresholds", {}))
        for name in ("iforest", "linkpred"):
            if name in label_free:
                s = label_free[name].score(own.arrays, since[-5000:])
                thresholds[name] = float(np.quantile(s, 0.995))
        threshold = thresholds.get(production, 0.5)
        metrics = {
            "validation_auprc": {
                k: _r(_auprc(supervised["val"]["y"], v)) for k, v in supervised["val"]["scores"].items()
            }
            if supervised
            else {},
            "thresholds": {k: _r(v) for k, v in thresholds.items()},
            "seconds": {**supervised.get("timings", {}), **label_free.get("timings", {})},
            "evaluation": self._evaluation_summary(),
        }
        path = folder / "model.pt"
        save_bundle(
            path,
            components=comps,
            production=production,
            threshold=threshold,
            thresholds=thresholds,
            config=cfg.as_dict(),
            meta={"version": version, "data": data},
        )
        own_path.unlink(missing_ok=True)
        mv = services.model_version_register(
            version=version,
            kind=production,
            checkpoint_path=path,
            trained_to_seq=own_meta["ledger_seq"],
            threshold=threshold,
            metrics=metrics,
            data=data,
            code_version=code_version(),
            actor=actor,
            notes=f"components: {', '.join(comps)}",
        )
        self._log(
            f"Registered model version {mv.version} ({production}, threshold {threshold:.3f}), "
            f"checkpoint {path} sha256 {mv.checkpoint_sha256[:16]}…"
        )
        if o["activate"]:
            services.model_version_activate(
                model_version=mv, actor=actor, reason=o["reason"] or "trained and activated"
            )
            self._log(
                f"Activated {mv.version}: it scores from now on (rescore older transfers with `score --rescore`)."
            )
        self._log(self.style.SUCCESS(f"Done in {time.monotonic() - started:.0f}s."))

    @staticmethod
    def _since(own: Any, since: str) -> np.ndarray:
        if since.isdigit():
            return np.flatnonzero(own.arrays["seq_create"] >= int(since))
        try:
            day = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC)
        except ValueError:
            raise CommandError("--since is a ledger seq (e.g. 120000) or a date (YYYY-MM-DD)") from None
        return np.flatnonzero(own.arrays["t_create"] >= day.timestamp() / 86400.0)

    @staticmethod
    def _production_choice(comps: dict[str, Any]) -> str:
        report = Path(settings.BASE_DIR) / "docs" / "evaluation.json"
        if report.exists():
            choice = (json.loads(report.read_text()).get("production", {}).get("model") or "").removeprefix("rules+")
            if choice in comps or (choice == "blend" and {"lightgbm_all", "gnn"} <= set(comps)):
                return choice
        for name in ("lightgbm_all", "gnn", "lightgbm_own", "linkpred", "iforest"):
            if name in comps:
                return name
        return next(iter(comps))

    @staticmethod
    def _evaluation_summary() -> dict[str, Any]:
        report = Path(settings.BASE_DIR) / "docs" / "evaluation.json"
        if not report.exists():
            return {}
        r = json.loads(report.read_text())
        return {
            "production": r.get("production"),
            "protocol": {k: r["protocol"].get(k) for k in ("scale", "train_seeds", "test_seeds", "test_from")},
        }


def _auprc(y: Any, s: Any) -> float:
    from anomaly.ml.metrics import auprc

    return auprc(y, s)


def _r(v: float | None) -> float | None:
    import math

    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)
