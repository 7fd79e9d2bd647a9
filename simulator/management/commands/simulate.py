"""simulate --seed N --scale {tiny,small,medium,large} [--scenarios ...] [--out DIR | --load] [--report]

Generates a synthetic DSCSA supply network and the life of its goods as EPCIS 2.0 documents, with
labelled anomaly scenarios. ``--out DIR`` writes the documents, master data and labels; ``--load``
loads them through the real capture path (master data through the provenance services, each
document captured as the partner that sent it) and the labels into simulator.ScenarioLabel, never
into the ledger; ``--report`` writes summary statistics and a picture of the network.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from simulator.network import SCALES
from simulator.scenarios import SCENARIOS, parse_scenarios

OPERATOR_GLN = "0890000000008"  # the simulator's own bulk-loading organization (synthetic, valid check digit)


class Command(BaseCommand):
    help = "Simulate a drug supply network as EPCIS 2.0 events with labelled anomaly scenarios."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives identical output")
        parser.add_argument(
            "--scale",
            choices=list(SCALES),
            default="tiny",
            help="tiny ~10k events, small ~100k, medium ~1M, large ~10M",
        )
        parser.add_argument(
            "--scenarios",
            default="all",
            help="'all', 'none', or comma-separated names with knobs, e.g. "
            "'theft:rate=5:subtlety=0.8:camouflage=0.5,pill_mill'. Known: " + ", ".join(SCENARIOS),
        )
        parser.add_argument("--subtlety", type=float, default=None, help="default subtlety for every scenario (0..1)")
        parser.add_argument(
            "--camouflage",
            type=float,
            default=None,
            help="default share of camouflaged incidents for every scenario (0..1)",
        )
        parser.add_argument("--rate-scale", type=float, default=1.0, help="multiply every scenario's incident rate")
        parser.add_argument("--days", type=int, default=None, help="override the scale's number of days")
        parser.add_argument(
            "--events", type=int, default=None, help="override the scale's target number of events (approximate)"
        )
        parser.add_argument("--start", default="2025-03-03", help="first simulated day (YYYY-MM-DD)")
        parser.add_argument("--noise", type=float, default=1.0, help="multiplier on benign look-alike rates")
        parser.add_argument("--missing", type=float, default=1.0, help="multiplier on missing-event rates")
        parser.add_argument("--late", type=float, default=1.0, help="multiplier on late-upload rates")
        parser.add_argument("--out", type=Path, default=None, help="write the output files to this folder")
        parser.add_argument("--load", action="store_true", help="load into the database through the capture path")
        parser.add_argument(
            "--as-operator",
            action="store_true",
            help="with --load: capture every document as one operator organization",
        )
        parser.add_argument(
            "--report",
            action="store_true",
            help="write report.md, report.json and network.png (into --out, or a new folder)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress lines")

    def handle(self, *args: Any, **opts: Any) -> None:
        from simulator.generate import generate

        out: Path | None = opts["out"]
        verbosity = 0 if opts["quiet"] else int(opts.get("verbosity", 1))
        try:
            knobs_text = opts["scenarios"]
            parse_scenarios(
                knobs_text, rate_scale=opts["rate_scale"], subtlety=opts["subtlety"], camouflage=opts["camouflage"]
            )
            start = dt.date.fromisoformat(opts["start"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        reuse = opts["report"] and not opts["load"] and self._same_run(out, opts)
        tmp: tempfile.TemporaryDirectory | None = None
        if out is None and (opts["load"] or opts["report"]):
            if opts["report"] and not opts["load"]:
                out = Path(f"simulation-{opts['scale']}-{opts['seed']}")
            else:
                tmp = tempfile.TemporaryDirectory(prefix="simulate-")
                out = Path(tmp.name)
        try:
            if not reuse:
                self._generate(generate, out, opts, start, verbosity)
            if opts["load"]:
                assert out is not None
                self._load(out, as_operator=opts["as_operator"], verbosity=verbosity)
            if opts["report"]:
                assert out is not None
                if tmp is not None:  # a report must outlive the temporary folder
                    keep = Path(f"simulation-{opts['scale']}-{opts['seed']}")
                    self._copy_for_report(out, keep)
                    out = keep
                from simulator.report import write_report

                summary = write_report(out)
                self.stdout.write(
                    f"report: {out / 'report.md'}, {out / 'report.json'}, {out / 'network.png'} "
                    f"({summary['trading_edges']} trading edges)"
                )
        finally:
            if tmp is not None:
                tmp.cleanup()

    @staticmethod
    def _same_run(out: Path | None, opts: dict[str, Any]) -> bool:
        """--report on a folder that already holds this seed and scale reports on it without regenerating."""
        if out is None or not (out / "manifest.json").exists():
            return False
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return manifest.get("seed") == opts["seed"] and manifest.get("scale") == opts["scale"]

    @staticmethod
    def _copy_for_report(src: Path, dst: Path) -> None:
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("manifest.json", "partners.json", "stats.json", "labels.jsonl", "lookalikes.jsonl", "speed.json"):
            if (src / name).exists():
                (dst / name).write_bytes((src / name).read_bytes())

    def _generate(self, generate: Any, out: Path | None, opts: dict[str, Any], start: dt.date, verbosity: int) -> None:
        scenarios = opts["scenarios"]
        if opts["subtlety"] is not None or opts["camouflage"] is not None or opts["rate_scale"] != 1.0:
            knobs = parse_scenarios(
                scenarios, rate_scale=opts["rate_scale"], subtlety=opts["subtlety"], camouflage=opts["camouflage"]
            )
            scenarios = (
                ",".join(
                    f"{name}:rate={k.rate}:subtlety={k.subtlety}:camouflage={k.camouflage}" for name, k in knobs.items()
                )
                or "none"
            )
        state = {"next": 0.0, "t0": time.perf_counter()}

        def progress(day: int, days: int, events: int) -> None:
            if verbosity and (day / days >= state["next"] or day == days):
                rate = events / max(time.perf_counter() - state["t0"], 1e-9)
                self.stdout.write(f"  day {day:>4}/{days}  {events:>11,} events  {rate:>9,.0f} events/s")
                state["next"] = day / days + 0.1

        if verbosity:
            self.stdout.write(f"simulating seed {opts['seed']}, scale {opts['scale']} -> {out or 'memory'}")
        cpu0 = time.process_time()
        result = generate(
            seed=opts["seed"],
            scale=opts["scale"],
            out_dir=out,
            scenarios=scenarios,
            start=start,
            days=opts["days"],
            noise=opts["noise"],
            missing=opts["missing"],
            late=opts["late"],
            events=opts["events"],
            progress=progress,
        )
        cpu = time.process_time() - cpu0
        m = result.manifest
        c = m["counts"]
        self.stdout.write(
            f"{c['events']:,} events in {c['documents']:,} documents, {c['labelled_events']:,} labelled events "
            f"({len(m['scenarios'])} scenarios, {len(m['incidents'])} incidents), {c['lookalike_tags']:,} look-alikes"
        )
        self.stdout.write(
            f"generated in {m['speed']['seconds']:.2f} s: {m['speed']['events_per_second']:,} events/s "
            f"({c['events'] / max(cpu, 1e-9):,.0f} events per CPU-second)"
        )

    # ------------------------------------------------------------------ loading

    @staticmethod
    def _capture(services: Any, document: dict, organization: Any, raw: bytes | None) -> Any:
        return _capture_doc(services, document, organization, raw)

    def _load(self, out: Path, *, as_operator: bool, verbosity: int) -> None:
        from provenance import services
        from provenance.models import Organization
        from simulator.models import LookalikeTag, ScenarioLabel, SimulationRun

        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        partners = json.loads((out / "partners.json").read_text(encoding="utf-8"))
        t0 = time.perf_counter()
        orgs: dict[str, Organization] = {}
        with transaction.atomic():
            for o in partners["organizations"]:
                orgs[o["gln"]] = services.organization_create(
                    name=o["name"],
                    gln=o["gln"],
                    kind=o["kind"],
                    company_prefixes=o["company_prefixes"],
                    licence_number=o["licence_number"],
                    licence_state=o["licence_state"],
                    licence_status=o["licence_status"],
                    authorized_trading_partner=o["authorized"],
                )
            for loc in partners["locations"]:
                services.location_create(
                    sgln=loc["sgln"],
                    organization=orgs[loc["organization_gln"]],
                    name=loc["name"],
                    latitude=loc["lat"],
                    longitude=loc["lon"],
                    county_fips=loc["county_fips"],
                )
            for p in partners["products"]:
                services.product_create(
                    gtin=p["gtin"], ndc=p["ndc"], name=p["name"], manufacturer=orgs.get(p["manufacturer_gln"])
                )
        operator = None
        if as_operator:
            operator = services.organization_create(
                name="Simulator bulk loader",
                gln=OPERATOR_GLN,
                kind="operator",
                company_prefixes=[OPERATOR_GLN[:7]],
                is_operator=True,
            )
        with open(out / "documents.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        captured = replayed = refused = 0
        first_problems: list[str] = []
        step = max(1, len(rows) // 10)
        # One doorbell for derived work at the end of the load instead of one per document.
        with services.derived_work_deferred():
            for i, row in enumerate(rows, start=1):
                raw = (out / row["file"]).read_bytes()
                document = json.loads(raw)
                submitter = operator or orgs[row["sender_gln"]]
                try:
                    job = self._capture(services, document, submitter, raw)
                except Exception as exc:
                    refused += 1
                    if len(first_problems) < 5:
                        first_problems.append(f"{row['file']}: {getattr(exc, 'detail', None) or exc}")
                    continue
                if getattr(job, "replayed", False):
                    replayed += 1
                else:
                    captured += 1
                if verbosity and (i % step == 0 or i == len(rows)):
                    self.stdout.write(f"  loaded {i:>7,}/{len(rows):,} documents")
        labels = _jsonl(out / "labels.jsonl")
        tags = _jsonl(out / "lookalikes.jsonl")
        with transaction.atomic():
            SimulationRun.objects.update_or_create(
                run=manifest["run"],
                defaults={"seed": manifest["seed"], "scale": manifest["scale"], "manifest": manifest},
            )
            ScenarioLabel.objects.bulk_create(
                [
                    ScenarioLabel(
                        event_id=r["event_id"],
                        scenario=r["scenario"],
                        incident=r["incident"],
                        role=r["role"],
                        transfer_key=r["transfer_key"],
                        start_time=dt.datetime.fromisoformat(r["start_time"]),
                        event_time=r["event_time"],
                        camouflaged=r["camouflaged"],
                        subtlety=r["subtlety"],
                        seed=r["seed"],
                        run=r["run"],
                    )
                    for r in labels
                ],
                batch_size=2000,
                ignore_conflicts=True,
            )
            LookalikeTag.objects.bulk_create(
                [
                    LookalikeTag(
                        event_id=r["event_id"], kind=r["kind"], transfer_key=r["transfer_key"], run=manifest["run"]
                    )
                    for r in tags
                ],
                batch_size=2000,
                ignore_conflicts=True,
            )
        self.stdout.write(
            f"loaded {len(orgs)} organizations, {len(partners['locations'])} locations, {len(partners['products'])} "
            f"products; documents: {captured:,} captured, {replayed:,} already loaded, {refused:,} refused; "
            f"{len(labels):,} labels in simulator.ScenarioLabel ({time.perf_counter() - t0:.1f} s)"
        )
        for line in first_problems:
            self.stderr.write(f"  refused {line}")


def _capture_doc(services: Any, document: dict, organization: Any, raw: bytes | None) -> Any:
    # A savepoint per document: a database error in one capture must not poison the loader's transaction,
    # while a refusal keeps the capture job that records why.
    with transaction.atomic():
        try:
            return services.custody_events_capture(document=document, organization=organization, raw=raw)
        except services.CaptureRefused as exc:
            refusal = exc
    raise refusal


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
