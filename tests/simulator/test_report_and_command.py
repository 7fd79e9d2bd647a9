from __future__ import annotations

import gzip
import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from simulator.geo import DATA_DIR, load_geography
from simulator.report import write_report
from simulator.scenarios import SCENARIOS


def test_the_report_summarizes_degrees_volumes_scenarios_and_look_alikes(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(tiny_dir, out)
    summary = write_report(out)
    assert {"degree_by_kind", "degree_histogram", "volume_by_kind", "scenarios", "lookalikes"} <= set(summary)
    assert set(summary["scenarios"]) == set(SCENARIOS)
    assert summary["degree_by_kind"]["wholesaler"]["max"] > summary["degree_by_kind"]["dispenser"]["median"]
    assert summary["top3_wholesaler_share_of_wholesale_packages"] > 0.6
    assert (out / "network.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Degree" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["run"] == summary["run"]


def test_simulate_writes_the_files_and_prints_its_speed(tmp_path: Path) -> None:
    stdout = StringIO()
    call_command(
        "simulate",
        "--seed",
        "5",
        "--scale",
        "tiny",
        "--days",
        "30",
        "--events",
        "2000",
        "--scenarios",
        "theft,pill_mill",
        "--out",
        str(tmp_path),
        stdout=stdout,
    )
    text = stdout.getvalue()
    assert "events/s" in text
    assert "day" in text
    for name in ("manifest.json", "partners.json", "documents.csv", "labels.jsonl", "lookalikes.jsonl", "stats.json"):
        assert (tmp_path / name).exists(), name
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 5
    assert set(manifest["scenarios"]) == {"theft", "pill_mill"}


def test_simulate_report_on_an_existing_folder_does_not_regenerate(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(tiny_dir, out)
    before = (out / "documents.csv").stat().st_mtime_ns
    manifest = json.loads((out / "manifest.json").read_text())
    stdout = StringIO()
    call_command(
        "simulate", "--seed", str(manifest["seed"]), "--scale", "tiny", "--out", str(out), "--report", stdout=stdout
    )
    assert (out / "network.png").exists()
    assert "report:" in stdout.getvalue()
    assert (out / "documents.csv").stat().st_mtime_ns == before


def test_simulate_refuses_unknown_scenarios() -> None:
    with pytest.raises(CommandError, match="unknown scenario"):
        call_command("simulate", "--scenarios", "teleportation", "--out", "/nonexistent", stdout=StringIO())


def test_the_geography_extract_is_small_real_and_nameless() -> None:
    total = sum(p.stat().st_size for p in DATA_DIR.glob("*.csv.gz"))
    assert total < 2_000_000
    geo = load_geography()
    assert len(geo.pharmacies) > 50_000
    assert len(geo.counties) > 3000
    assert {f.activity for f in geo.facilities} == {"distributor", "manufacturer", "reverse_distributor"}
    for path in DATA_DIR.glob("*.csv.gz"):
        with gzip.open(path, "rt") as fh:
            header = fh.readline().lower()
        assert "name" not in header
        assert "dea" not in header
    assert "ODbL" in (DATA_DIR / "README.md").read_text()


@pytest.mark.parametrize("seed", [305, 367])
def test_simulate_with_every_scenario_at_twenty_times_its_rate_runs_to_the_end(seed: int, tmp_path: Path) -> None:
    # 367 once failed with a KeyError in check_resale: one package picked twice into a shipment
    stdout = StringIO()
    call_command(
        "simulate", "--seed", str(seed), "--scale", "tiny", "--rate-scale", "20", "--out", str(tmp_path), stdout=stdout
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["incidents"]) > 5 * len(SCENARIOS)
    assert manifest["counts"]["labelled_events"] == len((tmp_path / "labels.jsonl").read_text().splitlines())
    assert "events/s" in stdout.getvalue()
