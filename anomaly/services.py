"""Writes of the anomaly app: scoring runs, scores, flags, flag decisions and the model registry.

Scoring is driven by the watermark "score" on the ledger sequence: a run takes the watermark's row lock,
scores every transfer derived (created or changed) since it, upserts one Score per (transfer, model
version), raises or refreshes flags, and moves the watermark, all in one transaction. A crashed worker
rolls back and the next run (redelivery, kick or beat sweep) does the same work again.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anomaly import rules
from anomaly.graph import ShipmentGraph, shipment_graph
from anomaly.models import (
    SCORE_WATERMARK,
    Flag,
    FlagDecision,
    ModelAudit,
    ModelVersion,
    Score,
    ScoringRun,
)
from provenance.audit import audit_reason
from provenance.models import Transfer, Watermark

logger = logging.getLogger(__name__)

NO_MODEL = "rules only: no model is active yet"
MAX_SEQS_PER_RUN = 20_000  # a catch-up after an outage proceeds in bounded transactions
EXPLAIN_TOP = 8


# ---------------------------------------------------------------------------------------------- scorer cache


@dataclass
class _Loaded:
    version_id: int
    sha256: str
    scorer: Any
    stat: tuple[int, int]  # size and mtime of the file when its digest was checked


_loaded: _Loaded | None = None


def active_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def _scorer_for(version: ModelVersion) -> Any:
    """The active model's scorer, loaded once per worker process (and again when the active version changes)."""
    global _loaded
    path = Path(version.checkpoint_path)
    if not path.is_absolute():
        path = Path(settings.MODEL_DIR) / path
    st = path.stat()
    stat = (st.st_size, st.st_mtime_ns)
    if (
        _loaded is None
        or _loaded.version_id != version.pk
        or _loaded.sha256 != version.checkpoint_sha256
        or _loaded.stat != stat  # the file changed since it was checked: check it again
    ):
        from anomaly.ml.inference import load_scorer

        digest = sha256_of(path)
        if digest != version.checkpoint_sha256:
            raise RuntimeError(
                f"Model {version.version}: checkpoint {path} has SHA-256 {digest}, the registry says "
                f"{version.checkpoint_sha256}; refusing to score with it. Re-register or roll back."
            )
        _loaded = _Loaded(version.pk, version.checkpoint_sha256, load_scorer(path), stat)
    return _loaded.scorer


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- scoring


def _derive_watermark() -> int:
    return Watermark.objects.filter(name="derive").values_list("seq", flat=True).first() or 0


def transfers_score(*, trigger: str, age_open: bool = False, max_runs: int | None = None) -> list[ScoringRun]:
    """Score everything derived since the watermark, in bounded runs; returns the runs made."""
    runs: list[ScoringRun] = []
    while max_runs is None or len(runs) < max_runs:
        run = _score_once(trigger=trigger, age_open=age_open and not runs)
        if run is None:
            break
        runs.append(run)
        if run.status == ScoringRun.Status.FAILED:
            break
    return runs


def _score_once(*, trigger: str, age_open: bool) -> ScoringRun | None:
    mark, _ = Watermark.objects.get_or_create(name=SCORE_WATERMARK)
    target = _derive_watermark()
    if mark.seq >= target and not age_open:
        return None
    version = active_model()
    run = ScoringRun.objects.create(
        trigger=trigger, model_version=version, from_seq=mark.seq, worker=socket.gethostname()[:200]
    )
    started = time.monotonic()
    try:
        with transaction.atomic():
            mark = Watermark.objects.select_for_update().get(name=SCORE_WATERMARK)
            from_seq = mark.seq
            to_seq = min(_derive_watermark(), from_seq + MAX_SEQS_PER_RUN)
            if to_seq <= from_seq and not age_open:
                run.delete()
                return None
            graph = shipment_graph()  # advanced to the derivation watermark (replays only what is new)
            to_seq = max(from_seq, min(to_seq, graph.seq))
            ids = set(
                Transfer.objects.filter(derived_at_seq__gte=from_seq, derived_at_seq__lt=to_seq).values_list(
                    "id", flat=True
                )
            )
            if age_open:
                ids |= set(graph.age())
            scored, raised, updated = _score_transfers(graph, sorted(ids), version=version, run=run)
            mark.seq = max(mark.seq, to_seq)
            mark.save(update_fields=["seq", "updated_at"])
            run.from_seq, run.to_seq = from_seq, to_seq
            run.transfers_scored, run.flags_raised, run.flags_updated = scored, raised, updated
            run.status = ScoringRun.Status.DONE
            run.finished_at = timezone.now()
            run.save()
    except Exception as exc:
        logger.exception("scoring run %s failed", run.pk)
        ScoringRun.objects.filter(pk=run.pk).update(
            status=ScoringRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        run.refresh_from_db()
        raise
    logger.info(
        "scoring run %s: %d transfers, %d flags raised, %d updated in %.2fs",
        run.pk,
        scored,
        raised,
        updated,
        time.monotonic() - started,
    )
    return run


def _score_transfers(
    graph: ShipmentGraph, transfer_ids: list[int], *, version: ModelVersion | None, run: ScoringRun
) -> tuple[int, int, int]:
    records = graph.records(transfer_ids)
    if not records:
        return 0, 0, 0
    scorer = _scorer_for(version) if version is not None else None
    if scorer is not None:
        arrays = graph.arrays()
        edges = np.array([r.idx for r in records], dtype=np.int64)
        values = np.asarray(scorer.score(arrays.arrays, edges), dtype=np.float64)
        threshold = version.threshold if version is not None else 1.0
    else:
        arrays = None
        edges = None
        values = np.array([0.0 if r.retracted else rules.rules_score(r.hits) for r in records])
        threshold = 1.0
    seq_of = dict(Transfer.objects.filter(id__in=[r.id for r in records]).values_list("id", "derived_at_seq"))
    _upsert_scores(records, values, version=version, run=run, seq_of=seq_of)
    # Without a model every rule hit is a flag; with one, the rules that are exact enough flag on their own and
    # the others when the model agrees (rules.FLAGGING).
    hard = (lambda hits: bool(hits)) if scorer is None else (lambda hits: any(h in rules.FLAGGING for h in hits))
    # a transfer whose event was retracted (errorDeclaration) is not raised again
    flagged = [(i, r) for i, r in enumerate(records) if not r.retracted and (values[i] >= threshold or hard(r.hits))]
    existing = {f.transfer_id: f for f in Flag.objects.filter(transfer_id__in=[r.id for _, r in flagged])}
    new_flags: list[int] = []
    transfers = Transfer.objects.in_bulk([r.id for _, r in flagged])
    raised = updated = 0
    explained: dict[int, dict[str, Any]] = {}
    if scorer is not None and arrays is not None and edges is not None and flagged:
        batch = scorer.explain_many(arrays.arrays, np.array([edges[i] for i, _ in flagged]), top=EXPLAIN_TOP)
        explained = {rec.id: e for (_, rec), e in zip(flagged, batch, strict=True)}
    for i, rec in flagged:
        transfer = transfers.get(rec.id)
        if transfer is None:
            continue
        if scorer is not None and arrays is not None:
            explanation = explained[rec.id]
            explanation["neighbours"] = _neighbours(explanation.pop("neighbour_edges", []), arrays)
            scored_by = f"{version.kind} {version.version}" if version else NO_MODEL
        else:
            explanation = {"method": "rules", "note": "No model is active yet: this flag comes from the rules only."}
            scored_by = NO_MODEL
        explanation["facts"] = rec.facts
        values_for = {
            "score": float(values[i]),
            "model_version": version,
            "scored_by": scored_by,
            "reasons": rules.reasons(rec.hits, rec.facts),
            "explanation": explanation,
            "event_ids": list(rec.event_ids),
            "lot_id": transfer.lot_id,
            "from_organization_id": transfer.from_organization_id,
            "to_organization_id": transfer.to_organization_id,
        }
        flag = existing.get(rec.id)
        if flag is None:
            new_flags.append(Flag.objects.create(transfer=transfer, **values_for).pk)
            raised += 1
        else:
            for key, value in values_for.items():
                setattr(flag, key, value)
            flag.save()
            updated += 1
    deep_parts = ("gnn", "linkpred", "iforest")
    if new_flags and scorer is not None and any(c in getattr(scorer, "components", {}) for c in deep_parts):
        # the graph model's own explanation (a forward and a backward pass each) comes just after, off this path
        transaction.on_commit(lambda: _enqueue_explanations(new_flags[:MAX_DEEP_EXPLANATIONS]))
    return len(records), raised, updated


MAX_DEEP_EXPLANATIONS = 200


def _enqueue_explanations(flag_ids: list[int]) -> None:
    try:
        from anomaly.tasks import score_explain_flags

        score_explain_flags.delay(flag_ids)
    except Exception:
        logger.warning("could not enqueue deep explanations for %d flags", len(flag_ids), exc_info=True)


@transaction.atomic
def flags_explain(*, flag_ids: list[int]) -> int:
    """Add the graph models' scores and the GNN's attribution over neighbouring transfers to these flags."""
    version = active_model()
    if version is None:
        return 0
    scorer = _scorer_for(version)
    graph = shipment_graph()
    arrays = graph.arrays()
    done = 0
    for flag in Flag.objects.select_for_update().filter(pk__in=flag_ids, model_version=version):
        rec = graph.record(flag.transfer_id)
        if rec is None:
            continue
        deep = scorer.explain(arrays.arrays, rec.idx, top=EXPLAIN_TOP, deep=True)
        deep["neighbours"] = _neighbours(deep.pop("neighbour_edges", []), arrays)
        deep["facts"] = flag.explanation.get("facts", rec.facts)
        flag.explanation = deep
        flag.save(update_fields=["explanation", "updated_at"])
        done += 1
    return done


def _upsert_scores(
    records: list, values: np.ndarray, *, version: ModelVersion | None, run: ScoringRun, seq_of: dict[int, int]
) -> None:
    ids = [r.id for r in records]
    existing = {s.transfer_id: s for s in Score.objects.filter(transfer_id__in=ids, model_version=version)}
    create, update = [], []
    for rec, value in zip(records, values, strict=True):
        s = existing.get(rec.id)
        if s is None:
            create.append(
                Score(
                    transfer_id=rec.id,
                    model_version=version,
                    score=float(value),
                    rule_hits=rec.hits,
                    at_seq=seq_of.get(rec.id, 0),
                    run=run,
                )
            )
        else:
            s.score, s.rule_hits, s.at_seq, s.run = float(value), rec.hits, seq_of.get(rec.id, 0), run
            s.scored_at = timezone.now()
            update.append(s)
    Score.objects.bulk_create(create, batch_size=1000)
    Score.objects.bulk_update(update, ["score", "rule_hits", "at_seq", "run", "scored_at"], batch_size=1000)


def _neighbours(edges: list[tuple[int, float, str]], arrays: Any) -> list[dict[str, Any]]:
    """Neighbouring earlier transfers named by the explainer, with their eventIDs for the reviewer."""
    if not edges:
        return []
    ids = [int(arrays.arrays["transfer_id"][e]) for e, _w, _rel in edges]
    rows = {
        t.id: t
        for t in Transfer.objects.filter(id__in=ids).only(
            "id", "ship_seq", "receive_seq", "gtin", "lot_number", "quantity", "from_party", "to_party"
        )
    }
    seqs = [s for t in rows.values() for s in (t.ship_seq, t.receive_seq) if s is not None]
    from provenance.models import CustodyEvent

    event_id = dict(CustodyEvent.objects.filter(seq__in=seqs).values_list("seq", "event_id"))
    out = []
    for (_e, weight, relation), tid in zip(edges, ids, strict=True):
        t = rows.get(tid)
        if t is None:
            continue
        out.append(
            {
                "transfer": tid,
                "relation": relation,
                "weight": round(float(weight), 4),
                "gtin": t.gtin,
                "lot": t.lot_number,
                "quantity": t.quantity,
                "event_ids": [event_id[s] for s in (t.ship_seq, t.receive_seq) if s in event_id],
            }
        )
    return out


# ---------------------------------------------------------------------------------------------- flag decisions


@transaction.atomic
def flag_decide(*, flag: Flag, status: str, actor: Any, reason: str) -> FlagDecision:
    """A reviewer moves a flag to investigating, cleared or suspect; the decision is kept (a label for training)."""
    if status not in Flag.Status.values:
        raise ValueError(f"status must be one of {', '.join(Flag.Status.values)}")
    if not reason.strip():
        raise ValueError("A decision needs a reason.")
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    flag.status = status
    flag.save(update_fields=["status", "updated_at"])
    return FlagDecision.objects.create(flag=flag, status=status, actor=actor, reason=reason)


# ---------------------------------------------------------------------------------------------- model registry


@transaction.atomic
def model_version_register(
    *,
    version: str,
    kind: str,
    checkpoint_path: Path,
    trained_to_seq: int,
    threshold: float,
    metrics: dict[str, Any],
    data: dict[str, Any],
    code_version: str,
    actor: str,
    notes: str = "",
    format_version: int = 1,
) -> ModelVersion:
    digest = sha256_of(checkpoint_path)
    model_dir = Path(settings.MODEL_DIR).resolve()
    try:
        stored = str(checkpoint_path.resolve().relative_to(model_dir))
    except ValueError:
        stored = str(checkpoint_path.resolve())
    mv = ModelVersion.objects.create(
        version=version,
        kind=kind,
        created_by=actor,
        trained_to_seq=trained_to_seq,
        data=data,
        code_version=code_version,
        metrics=metrics,
        threshold=threshold,
        checkpoint_path=stored,
        checkpoint_sha256=digest,
        format_version=format_version,
        notes=notes,
    )
    ModelAudit.objects.create(model_version=mv, action=ModelAudit.Action.REGISTER, actor=actor, reason=notes)
    return mv


@transaction.atomic
def model_version_activate(*, model_version: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
    """Make one registered version the production scorer (the previous one stops), recorded in the audit trail."""
    previous = ModelVersion.objects.select_for_update().filter(is_active=True).first()
    if previous is not None and previous.pk == model_version.pk:
        return previous
    with audit_reason(reason or "activate", actor=actor, model_version=model_version.version):
        if previous is not None:
            ModelVersion.objects.filter(pk=previous.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=model_version.pk).update(
            is_active=True, activated_at=timezone.now(), activated_by=actor
        )
    ModelAudit.objects.create(
        model_version=model_version,
        previous_version=previous,
        action=ModelAudit.Action.ACTIVATE,
        actor=actor,
        reason=reason,
    )
    model_version.refresh_from_db()
    return model_version


@transaction.atomic
def model_version_rollback(*, actor: str, reason: str) -> ModelVersion | None:
    """Go back to the version that was active before the current one (or to rules only if there was none)."""
    if not reason.strip():
        raise ValueError("A rollback needs a reason.")
    current = ModelVersion.objects.select_for_update().filter(is_active=True).first()
    if current is None:
        raise ValueError("No model is active: there is nothing to roll back.")
    last = (
        ModelAudit.objects.filter(model_version=current, action=ModelAudit.Action.ACTIVATE)
        .order_by("-at", "-id")
        .first()
    )
    target = last.previous_version if last is not None else None
    with audit_reason(reason, actor=actor, rollback_from=current.version):
        ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        if target is not None:
            ModelVersion.objects.filter(pk=target.pk).update(
                is_active=True, activated_at=timezone.now(), activated_by=actor
            )
    ModelAudit.objects.create(
        model_version=target or current,
        previous_version=current,
        action=ModelAudit.Action.ROLLBACK if target is not None else ModelAudit.Action.DEACTIVATE,
        actor=actor,
        reason=reason,
    )
    return target
