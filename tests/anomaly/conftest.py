"""A small supply chain built through the real capture path: Alice (manufacturer and wholesaler), Bob (a
pharmacy), Carol (a wholesaler nobody ships to). Times are a day apart unless a test says otherwise."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests import factories as f
from tests.conftest import Party, _party

ALICE_GLN = "0700001000008"
BOB_GLN = "0700002000007"
CAROL_GLN = "0700003000006"

# Tiny graphs: one thread each is fastest, and other test runs share the cores.
os.environ.setdefault("ANOMALY_TORCH_THREADS", "1")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked gpu run only where CUDA is present."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_graph() -> Iterator[None]:
    # Each test has its own ledger; the process-wide graph and scorer must not leak between tests.
    from anomaly import graph, services

    graph.reset()
    services._loaded = None
    yield
    graph.reset()
    services._loaded = None


@pytest.fixture(autouse=True)
def _score_when_asked(settings) -> None:
    # These tests drive scoring themselves; test_scoring.py switches the kick after each capture back on.
    settings.ANOMALY_SCORE_ON_CAPTURE = False


@pytest.fixture
def bob(bob: Party) -> Party:
    """Bob is a pharmacy here (the shared cast registers every partner as a wholesaler)."""
    from provenance.models import Organization

    Organization.objects.filter(pk=bob.organization.pk).update(kind=Organization.Kind.DISPENSER)
    return bob


@pytest.fixture
def carol(db) -> Party:
    """A wholesale distributor (company prefix 0700003)."""
    return _party(name="Carol Distribution", gln=CAROL_GLN, prefix="0700003")


@pytest.fixture
def located(alice, bob, carol) -> None:
    """Coordinates for the three parties' locations: Alice in Chicago, Bob in St. Louis, Carol in Boston."""
    from provenance.models import Location

    for gln, (lat, lon) in {ALICE_GLN: (41.88, -87.63), BOB_GLN: (38.63, -90.20), CAROL_GLN: (42.36, -71.06)}.items():
        Location.objects.filter(gln=gln).update(latitude=lat, longitude=lon)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Capture a document through HTTP, as a partner does (derivation is kicked on commit)."""

    def _capture(client, *events):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/epcis/capture", data=json.dumps(f.document(*events)), content_type="application/json"
            )
        assert response.status_code == 202, response.content
        return response

    return _capture


def packs(n: int, tag: str = "P") -> list[str]:
    return [f.sgtin_urn("0700001", f"{tag}{i}") for i in range(n)]


def day(d: int, hour: int = 8) -> str:
    return f"2026-11-{d:02d}T{hour:02d}:00:00.000-05:00"


def reviewed_clones(alice: Party, bob: Party, carol: Party, capture, officer) -> None:
    """Ten ordinary shipments Alice -> Bob and three clones Carol -> Alice, scored by the rules, every flag
    decided suspect by ``officer``: labels for training."""
    from anomaly.models import Flag
    from anomaly.services import flag_decide, transfers_score

    for i in range(10):
        p = packs(2, f"G{i}-")
        capture(alice.client, f.commissioning(ALICE_GLN, p, lot=f"L{i % 3}", when=day(1 + i)))
        capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2 + i)))
        capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, p, when=day(3 + i)))
    for i in range(3):
        capture(carol.client, f.shipping(CAROL_GLN, ALICE_GLN, packs(2, f"G{i}-"), when=day(14 + i)))
    transfers_score(trigger="test")
    for flag in Flag.objects.all():
        flag_decide(flag=flag, status=Flag.Status.SUSPECT, actor=officer, reason="clone confirmed")
