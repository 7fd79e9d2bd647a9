"""A trained model through the whole path: compliance decisions as labels, train_model (fast_dev_run), registry
with checksum and audit trail, activation and rollback, and flags scored and explained by the model."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from anomaly.models import Flag, ModelAudit, ModelVersion, Score
from anomaly.services import model_version_activate, model_version_rollback, transfers_score
from provenance.models import Watermark
from tests.anomaly.conftest import reviewed_clones

pytestmark = pytest.mark.django_db


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


@pytest.fixture
def reviewed(alice, bob, carol, located, capture, django_user_model):
    """Ten ordinary shipments, three clones; a reviewer decided the flags (labels for training)."""
    officer = django_user_model.objects.create_user("officer", is_staff=True)
    reviewed_clones(alice, bob, carol, capture, officer)
    return officer


def train(*extra: str) -> str:
    out = StringIO()
    call_command(
        "train_model",
        "--no-simulated",
        "--fast-dev-run",
        "--no-progress",
        "--max-epochs",
        "1",
        "--components",
        "lightgbm_all,gnn,linkpred,iforest",
        "--actor",
        "test",
        *extra,
        stdout=out,
    )
    return out.getvalue()


def test_a_trained_model_scores_flags_and_explains_them(reviewed, model_dir, django_capture_on_commit_callbacks):
    output = train("--activate", "--production", "lightgbm_all")
    assert "Registered model version" in output
    mv = ModelVersion.objects.get()
    assert mv.is_active
    assert mv.activated_by == "test"
    assert (model_dir / mv.checkpoint_path).exists()
    assert len(mv.checkpoint_sha256) == 64
    assert mv.trained_to_seq == Watermark.objects.get(name="derive").seq
    assert mv.data["label_free"]["source"] == "this deployment's ledger"
    assert mv.data["supervised"]["networks"][0]["labels"] == "compliance decisions"
    Watermark.objects.filter(name="score").update(seq=0)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        transfers_score(trigger="test")
    assert callbacks, "the GNN's explanations of new flags are enqueued after the scores commit"
    assert Score.objects.filter(model_version=mv).count() == Score.objects.filter(model_version=None).count()
    decided = Flag.objects.filter(status=Flag.Status.SUSPECT)
    assert decided.count() == 3  # decisions survive rescoring; rule hits flag whatever the model says
    flag = decided.first()
    assert flag.model_version == mv
    assert flag.scored_by.startswith("lightgbm_all")
    explanation = flag.explanation
    assert explanation["method"] == "treeshap"
    assert explanation["features"]
    assert "neighbours" in explanation
    deep = Flag.objects.filter(model_version=mv, explanation__deep=True).first()
    assert deep is not None
    assert {"lightgbm_all", "gnn", "linkpred", "iforest"} <= set(deep.explanation["components"])
    assert deep.explanation["neighbour_method"].startswith("gradient")


def test_activation_and_rollback_are_audited(reviewed, model_dir):
    train("--components", "lightgbm_all")
    train("--components", "lightgbm_all")
    first, second = ModelVersion.objects.order_by("created_at", "id")
    model_version_activate(model_version=first, actor="alice", reason="first model")
    model_version_activate(model_version=second, actor="bob", reason="better AUPRC")
    assert model_version_rollback(actor="carol", reason="too many false flags") == first
    first.refresh_from_db()
    assert first.is_active
    actions = list(ModelAudit.objects.order_by("id").values_list("action", "actor"))
    assert actions == [
        ("register", "test"),
        ("register", "test"),
        ("activate", "alice"),
        ("activate", "bob"),
        ("rollback", "carol"),
    ]
    assert model_version_rollback(actor="carol", reason="back to rules") is None
    assert not ModelVersion.objects.filter(is_active=True).exists()


def test_a_checkpoint_that_changed_on_disk_is_refused(reviewed, model_dir):
    train("--activate", "--components", "lightgbm_all")
    mv = ModelVersion.objects.get()
    with open(model_dir / mv.checkpoint_path, "ab") as fh:
        fh.write(b"tampered")
    Watermark.objects.filter(name="score").update(seq=0)
    with pytest.raises(RuntimeError, match="SHA-256"):
        transfers_score(trigger="test")


@pytest.mark.gpu
def test_the_gnn_trains_on_a_gpu(reviewed, model_dir):
    import torch

    assert torch.cuda.is_available()
    assert "Registered" in train("--components", "gnn")


def _cached_network(folder, *, code: str, output: str) -> None:
    import json

    folder.mkdir(parents=True)
    (folder / "ledger.sqlite3").write_bytes(b"a loaded ledger")
    (folder / "simulator_version").write_text(json.dumps({"code": code, "output": output}))


def _simulator_writes(monkeypatch, content: bytes) -> list[list[str]]:
    """Stands in for `manage.py simulate --out DIR`: writes ``content`` as the simulator's output."""
    from pathlib import Path

    from anomaly import datasets

    calls: list[list[str]] = []

    def run(command, env, tag, log, *, check):
        calls.append(command)
        out = Path(command[command.index("--out") + 1])
        (out / "documents").mkdir(parents=True, exist_ok=True)
        (out / "documents" / "0000001.json").write_bytes(content)
        (out / "speed.json").write_text(str(len(calls)))  # differs between identical runs, as the real one
        return True

    monkeypatch.setattr(datasets, "_run", run)
    return calls


def test_a_cached_network_is_kept_while_the_simulators_output_is_unchanged(tmp_path, monkeypatch):
    from anomaly import datasets

    reference = tmp_path / "reference"
    _simulator_writes(monkeypatch, b"same events")
    datasets._run(["simulate", "--out", str(reference)], {}, "t", None, check=True)
    folder = tmp_path / "tiny-1"
    _cached_network(folder, code="older code", output=datasets.simulator_output_version(reference))

    assert datasets._loaded_network_is_current(folder, ["simulate"], {}, "t", None)
    import json

    stamp = json.loads((folder / "simulator_version").read_text())
    assert stamp["code"] == datasets.simulator_code_version()  # next time, no regeneration at all
    calls = _simulator_writes(monkeypatch, b"other events")
    assert datasets._loaded_network_is_current(folder, ["simulate"], {}, "t", None)
    assert calls == []


def test_a_cached_network_from_a_simulator_with_other_output_is_rebuilt(tmp_path, monkeypatch):
    from anomaly import datasets

    folder = tmp_path / "tiny-1"
    _cached_network(folder, code="older code", output="digest of what the old simulator wrote")
    calls = _simulator_writes(monkeypatch, b"events with corrected labels")
    assert not datasets._loaded_network_is_current(folder, ["simulate"], {}, "t", None)
    assert len(calls) == 1
    legacy = tmp_path / "tiny-2"  # loaded before networks were stamped with the simulator's version
    legacy.mkdir()
    (legacy / "loaded.ok").write_text("")
    (legacy / "db.sqlite3").write_bytes(b"")
    assert not datasets._loaded_network_is_current(legacy, ["simulate"], {}, "t", None)


def test_a_new_deployment_with_an_empty_ledger_has_an_empty_graph():
    from anomaly import rules
    from anomaly.ml.replay import FEATURES, LedgerReplay

    arrays = LedgerReplay(parties={}, rules=rules.check, lot_owner=lambda _gtin: None).edge_arrays()
    assert arrays["x"].shape == (0, len(FEATURES))
    assert len(arrays["transfer_id"]) == 0
