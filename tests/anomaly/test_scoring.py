"""Scoring by watermark: every new transfer once per model version, flags with reasons and events, rules only
until a model is active, catch-up after an outage, and bounded redeliveries."""

from __future__ import annotations

import pytest

from anomaly import tasks
from anomaly.models import SCORE_WATERMARK, Flag, Score, ScoringRun
from anomaly.services import NO_MODEL, transfers_score
from provenance.models import CustodyEvent, Transfer, Watermark
from tests import factories as f
from tests.anomaly.conftest import ALICE_GLN, BOB_GLN, CAROL_GLN, day, packs

pytestmark = pytest.mark.django_db


def clone_scene(alice, bob, carol, capture) -> None:
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p[:1], when=day(5)))


def test_without_a_model_rules_still_flag_and_the_flag_says_so(alice, bob, carol, capture):
    clone_scene(alice, bob, carol, capture)
    transfers_score(trigger="test")
    flag = Flag.objects.get()
    assert flag.scored_by == NO_MODEL
    assert flag.model_version is None
    assert [r["code"] for r in flag.reasons] == ["serial_two_custodians"]
    assert flag.explanation["method"] == "rules"
    assert "No model" in flag.explanation["note"]
    ship = CustodyEvent.objects.get(seq=flag.transfer.ship_seq)
    assert flag.event_ids == [ship.event_id]
    assert flag.from_organization == carol.organization
    assert flag.status == Flag.Status.OPEN


def test_a_receipt_adds_its_event_to_the_flag(alice, bob, carol, capture):
    clone_scene(alice, bob, carol, capture)
    transfers_score(trigger="test")
    capture(bob.client, f.receiving(CAROL_GLN, BOB_GLN, packs(1), when=day(6)))
    transfers_score(trigger="test")
    flag = Flag.objects.get()
    events = CustodyEvent.objects.filter(seq__in=[flag.transfer.ship_seq, flag.transfer.receive_seq])
    assert sorted(flag.event_ids) == sorted(e.event_id for e in events)
    assert Score.objects.filter(transfer=flag.transfer).count() == 1  # rescored in place


def test_scoring_is_idempotent_and_driven_by_the_watermark(alice, bob, carol, capture):
    clone_scene(alice, bob, carol, capture)
    transfers_score(trigger="test")
    assert transfers_score(trigger="test") == []  # nothing new: no run at all
    Watermark.objects.filter(name=SCORE_WATERMARK).update(seq=0)  # as if a worker died before committing
    transfers_score(trigger="test")
    assert Score.objects.count() == Transfer.objects.count() == 2
    assert Flag.objects.count() == 1
    assert Watermark.objects.get(name=SCORE_WATERMARK).seq == CustodyEvent.objects.count()


def test_a_reviewers_status_survives_rescoring(alice, bob, carol, capture, django_user_model):
    from anomaly.services import flag_decide

    clone_scene(alice, bob, carol, capture)
    transfers_score(trigger="test")
    officer = django_user_model.objects.create_user("officer", is_staff=True)
    flag_decide(flag=Flag.objects.get(), status=Flag.Status.INVESTIGATING, actor=officer, reason="calling Carol")
    Watermark.objects.filter(name=SCORE_WATERMARK).update(seq=0)
    transfers_score(trigger="test")
    assert Flag.objects.get().status == Flag.Status.INVESTIGATING


def test_scoring_catches_up_after_an_outage_in_bounded_runs(alice, bob, carol, capture, monkeypatch):
    from anomaly import services

    monkeypatch.setattr(services, "MAX_SEQS_PER_RUN", 2)
    clone_scene(alice, bob, carol, capture)
    runs = transfers_score(trigger="test")
    assert [(r.from_seq, r.to_seq) for r in runs] == [(0, 2), (2, 3)]
    assert all(r.status == ScoringRun.Status.DONE for r in runs)
    assert Flag.objects.count() == 1


def test_the_task_derives_and_scores(alice, bob, carol, capture):
    clone_scene(alice, bob, carol, capture)
    Watermark.objects.filter(name="derive").update(seq=1)  # derivation lagging behind the ledger
    Transfer.objects.all().delete()
    assert tasks.score_new_transfers.delay().get() == 2
    assert Flag.objects.count() == 1


def test_a_message_that_keeps_killing_its_worker_is_dropped_after_a_few_deliveries(alice, bob, carol, capture):
    clone_scene(alice, bob, carol, capture)
    for _ in range(tasks.MAX_DELIVERIES):
        tasks._delivery_count("same-message")
    assert tasks.score_new_transfers.apply(task_id="same-message").get() == 0
    assert not Score.objects.exists()  # the watermark kept the work for the next kick or sweep
    assert tasks.score_new_transfers.apply(task_id="another-message").get() == 2


def test_kicks_are_coalesced_while_one_is_pending(monkeypatch):
    from django.core.cache import cache

    sent = []
    monkeypatch.setattr(tasks.score_new_transfers, "delay", lambda *a, **k: sent.append(1))
    cache.delete(tasks.KICK_KEY)
    tasks.kick_scoring()
    tasks.kick_scoring()
    assert sent == [1]


def test_the_score_command_scores_synchronously(alice, bob, carol, capture):
    from io import StringIO

    from django.core.management import call_command

    clone_scene(alice, bob, carol, capture)
    out = StringIO()
    call_command("score", stdout=out)
    assert "rules only" in out.getvalue()
    assert "Scored 2 transfers, raised 1 flags" in out.getvalue()


def test_a_committed_capture_kicks_scoring_and_the_flag_follows(alice, bob, carol, capture, settings):
    settings.ANOMALY_SCORE_ON_CAPTURE = True  # the default outside these tests
    clone_scene(alice, bob, carol, capture)  # each capture commits (on_commit callbacks run)
    flag = Flag.objects.get()  # scored by the kicks alone: nobody called score
    assert [r["code"] for r in flag.reasons] == ["serial_two_custodians"]
    assert {run.trigger for run in ScoringRun.objects.all()} == {"kick"}
    assert transfers_score(trigger="test") == []  # nothing left behind the watermark


def test_scoring_on_capture_can_be_switched_off(alice, bob, carol, capture, settings):
    settings.ANOMALY_SCORE_ON_CAPTURE = False
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    assert not ScoringRun.objects.exists()
    assert Transfer.objects.count() == 1  # derivation still follows every capture


def test_beat_sweeps_scoring_and_checkpoints():
    from django.conf import settings

    tasks_by_entry = {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    assert tasks_by_entry["anomaly-score-sweep"] == tasks.SWEEP_TASK
    assert "ledger-checkpoint" in tasks_by_entry


def test_a_restarted_worker_resumes_from_the_graph_snapshot(
    alice, bob, carol, capture, settings, tmp_path, monkeypatch
):
    from anomaly import graph

    settings.MODEL_DIR = tmp_path
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    transfers_score(trigger="test")
    assert graph.snapshot_save(force=True)
    graph.reset()  # as if the worker restarted

    def no_rebuild(self):  # resuming must not replay the ledger from the start
        raise AssertionError("the graph was rebuilt instead of resumed from the snapshot")

    monkeypatch.setattr(graph.ShipmentGraph, "__init__", no_rebuild)
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p[:1], when=day(5)))
    transfers_score(trigger="test")  # Carol's clone is judged against custody known only from the snapshot
    assert [r["code"] for r in Flag.objects.get().reasons] == ["serial_two_custodians"]


def test_a_snapshot_of_another_database_or_feature_code_is_ignored(alice, bob, capture, settings, tmp_path):
    import pickle

    from anomaly import graph

    settings.MODEL_DIR = tmp_path
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    transfers_score(trigger="test")
    graph.snapshot_save(force=True)
    path = tmp_path / graph.SNAPSHOT_FILE
    assert graph.snapshot_load() is not None
    for key, value in (("database", "postgresql:elsewhere:5432:other"), ("feature_version", "older")):
        payload = pickle.loads(path.read_bytes())
        payload[key] = value
        path.write_bytes(pickle.dumps(payload))
        assert graph.snapshot_load() is None
    path.write_bytes(b"not a snapshot")
    assert graph.snapshot_load() is None  # unreadable: the worker replays the ledger instead
