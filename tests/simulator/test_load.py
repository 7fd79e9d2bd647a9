"""--load goes through the real capture path, keeps labels out of the ledger, and can be repeated."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _simulate(out: Path) -> str:
    stdout = StringIO()
    call_command(
        "simulate",
        "--seed",
        "11",
        "--scale",
        "tiny",
        "--days",
        "28",
        "--events",
        "900",
        "--scenarios",
        "theft:rate=1,counterfeit_injection:rate=1",
        "--out",
        str(out),
        "--load",
        "--quiet",
        stdout=stdout,
        stderr=StringIO(),
    )
    return stdout.getvalue()


def test_loading_captures_every_document_as_its_sender_and_the_labels_apart(tmp_path: Path) -> None:
    from provenance.models import CustodyEvent, Location, Organization, Product
    from simulator.models import LookalikeTag, ScenarioLabel, SimulationRun

    text = _simulate(tmp_path)
    partners = json.loads((tmp_path / "partners.json").read_text())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert Organization.objects.filter(gln__in=[o["gln"] for o in partners["organizations"]]).count() == len(
        partners["organizations"]
    )
    assert Location.objects.count() >= len(partners["locations"])
    assert Product.objects.count() == len(partners["products"])
    events = CustodyEvent.objects.count()
    # errorDeclarations repeat the retracted event's eventID (EPCIS 2.0 7.4.1.2); a capture that refuses
    # them leaves them out, everything else must be recorded
    assert manifest["counts"]["events"] - manifest["counts"]["error_declarations"] <= events
    assert " 0 refused" in text
    # every recorded event was submitted by the partner that sent its document
    senders = {o["gln"] for o in partners["organizations"]}
    assert set(CustodyEvent.objects.values_list("submitter__gln", flat=True).distinct()) <= senders
    labels = list(ScenarioLabel.objects.values_list("event_id", flat=True))
    assert len(labels) == manifest["counts"]["labelled_events"] > 0
    assert CustodyEvent.objects.filter(event_id__in=labels).count() >= len(set(labels))
    assert LookalikeTag.objects.count() == manifest["counts"]["lookalike_tags"]
    assert SimulationRun.objects.get(run=manifest["run"]).seed == 11
    # ground truth stays out of the ledger
    assert not CustodyEvent.objects.filter(body__icontains="scenario").exists()


def test_loading_the_same_seed_twice_duplicates_nothing(tmp_path: Path) -> None:
    from provenance.models import CustodyEvent, Organization
    from simulator.models import ScenarioLabel

    _simulate(tmp_path / "a")
    counts = (CustodyEvent.objects.count(), Organization.objects.count(), ScenarioLabel.objects.count())
    text = _simulate(tmp_path / "b")
    assert (CustodyEvent.objects.count(), Organization.objects.count(), ScenarioLabel.objects.count()) == counts
    assert "0 captured" in text
