"""Held-out evaluation of every scorer side by side (``manage.py evaluate``); writes docs/evaluation.{md,json,png}.

Protocol (docs/evaluation.md says it in words):
- Networks: the supervised models train on the *training* networks (simulator seeds) and are tested on other
  networks (test seeds) they never saw.
- Time: in every network the period is cut at ``test_from``. Training uses only the training networks' past
  (its latest quarter validates: early stopping and the operating threshold); testing scores the test networks'
  future. A test transfer's features and message passing see its own network's earlier ledger entries only.
- Label-free models (isolation forest, link prediction) fit on each test network's own past, as a new
  deployment would, and never see a label.
- Leave-one-scenario-out: the trees (and the GNN unless skipped) are retrained without one scenario's
  positives and tested on that scenario. Camouflaged incidents are reported apart.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.ml import metrics as M
from anomaly.ml.config import TrainConfig
from anomaly.ml.data import Dataset

Log = Callable[[str], None]
LADDER = [
    "rules",
    "iforest",
    "linkpred",
    "lightgbm_own",
    "lightgbm_all",
    "gnn",
    "blend",
    "rules+lightgbm_all",
    "rules+blend",
]
TITLES = {
    "rules": "Rules only",
    "iforest": "Isolation forest (label-free)",
    "linkpred": "GNN link prediction (label-free)",
    "lightgbm_own": "LightGBM, transfer features",
    "lightgbm_all": "LightGBM + history and neighbour aggregates",
    "gnn": "Heterogeneous GNN (TransformerConv, edge features, time encoding)",
    "blend": "Stack: LightGBM + GNN (mean log-odds)",
    "rules+lightgbm_all": "Served: exact rules flag, else LightGBM + history",
    "rules+blend": "Served: exact rules flag, else LightGBM + GNN stack",
}
LABEL_FREE_FLAG_SHARE = 0.005  # label-free scorers flag the most unusual 0.5% (their threshold from history)


def _nan(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def prepare(seeds: list[int], scale: str, data_dir: Path, log: Log, rate_scale: float = 1.0) -> list[Dataset]:
    from anomaly.datasets import prepare_simulated

    out = []
    extra = ["--rate-scale", f"{rate_scale:g}"] if rate_scale != 1.0 else []
    for seed in seeds:
        t0 = time.monotonic()
        path = prepare_simulated(seed=seed, scale=scale, root=data_dir, log=log, extra=extra)
        ds = Dataset.load(path, name=f"{scale}-{seed}")
        log(f"  network {ds.name}: {len(ds)} transfers, {int(ds.y.sum())} labelled ({time.monotonic() - t0:.0f}s)")
        out.append(ds)
    return out


def score_network(
    models: dict[str, Any], ds: Dataset, edges: np.ndarray, history: np.ndarray, cfg: TrainConfig, log: Log
) -> dict[str, np.ndarray]:
    """Every model's scores for ``edges`` of one test network (label-free ones fitted on ``history``)."""
    from anomaly.ml.baselines import rules_scores
    from anomaly.ml.train import blend, train_label_free

    a = ds.arrays
    scores: dict[str, np.ndarray] = {"rules": rules_scores(a, edges)}
    label_free = train_label_free(a, history, cfg, log=lambda _m: None)
    for name in ("iforest", "linkpred"):
        if name in label_free:
            scores[name] = label_free[name].score(a, edges)
            hist_scores = label_free[name].score(a, history[-min(len(history), 3000) :])
            models.setdefault("_label_free_thresholds", {}).setdefault(ds.name, {})[name] = float(
                np.quantile(hist_scores, 1 - LABEL_FREE_FLAG_SHARE)
            )
    for name in ("lightgbm_own", "lightgbm_all", "gnn"):
        if name in models:
            scores[name] = models[name].score(a, edges)
    if "gnn" in scores and "lightgbm_all" in scores:
        scores["blend"] = blend(scores["lightgbm_all"], scores["gnn"])
    # what the service does: the exact rules (rules.FLAGGING) flag on their own, the model decides the rest
    from anomaly.rules import FLAGGING

    exact = np.array([any(h in FLAGGING for h in str(hits).split("|") if h) for hits in a["hits"][edges]])
    for name in ("lightgbm_all", "blend"):
        if name in scores:
            scores[f"rules+{name}"] = np.where(exact, 1.0 + scores[name], scores[name])
    retracted = a["retracted"][edges]
    for name in scores:
        scores[name] = np.where(retracted, 0.0, scores[name])
    return scores


def run_evaluation(
    *,
    test_seeds: list[int],
    train_seeds: list[int],
    scale: str,
    data_dir: Path,
    out_dir: Path,
    val_seeds: list[int] | None = None,
    train_rate_scale: float = 1.0,
    test_from: float = 0.6,
    models: str = "all",
    loso: bool = True,
    loso_gnn_epochs: int = 0,
    max_epochs: int | None = None,
    log: Log = print,
) -> dict[str, Any]:
    from anomaly.ml.train import train_supervised

    val_seeds = val_seeds or []
    if (set(test_seeds) & set(train_seeds)) or (set(test_seeds) & set(val_seeds)):
        raise ValueError("test seeds overlap training or validation seeds: testing is on networks never seen")
    if len(test_seeds) < 1 or len(train_seeds) < 1:
        raise ValueError("give at least one test seed and one training seed")
    started = time.monotonic()
    cfg = TrainConfig(progress=False)
    if max_epochs is not None:
        cfg.max_epochs = max_epochs
    if models != "all":
        wanted = {m.strip() for m in models.split(",")}
        cfg.components = tuple(c for c in cfg.components if c in wanted or (c == "lightgbm_all" and "blend" in wanted))
    log(
        f"preparing {len(train_seeds)} training, {len(val_seeds)} validation and {len(test_seeds)} test networks "
        f"({scale}) ..."
    )
    train_sets = prepare(train_seeds, scale, data_dir, log, rate_scale=train_rate_scale)
    val_sets = prepare(val_seeds, scale, data_dir, log)
    test_sets = prepare(test_seeds, scale, data_dir, log)
    networks = [(ds.arrays, np.flatnonzero(ds.before(test_from))) for ds in train_sets]
    val_networks = [(ds.arrays, np.flatnonzero(ds.before(test_from))) for ds in val_sets] or None
    log("training on the training networks' past ...")
    t0 = time.monotonic()
    trained = train_supervised(networks, cfg, log=log, val_networks=val_networks)
    train_seconds = time.monotonic() - t0
    thresholds = trained["thresholds"]
    per_seed: dict[str, dict[str, Any]] = {}
    pooled_y: list[np.ndarray] = []
    pooled_sc: list[np.ndarray] = []
    pooled_s: dict[str, list[np.ndarray]] = {m: [] for m in LADDER}
    for ds in test_sets:
        test = np.flatnonzero(ds.after(test_from))
        history = np.flatnonzero(ds.before(test_from))
        log(f"scoring {ds.name}: {len(test)} test transfers ({int(ds.y[test].sum())} labelled) ...")
        scores = score_network(trained, ds, test, history, cfg, log)
        y = ds.y[test]
        seed_result: dict[str, Any] = {"transfers": len(test), "positives": int(y.sum()), "models": {}}
        lf_thr = trained.get("_label_free_thresholds", {}).get(ds.name, {})
        for name, s in scores.items():
            thr = lf_thr.get(name, thresholds.get(name.removeprefix("rules+"), 0.5))
            if name == "rules":
                thr = 1e-9  # any hit
            seed_result["models"][name] = _metrics(
                y, s, thr, ds.arrays["scenario"][test], ds.arrays["camouflaged"][test], ds.arrays["lookalike"][test]
            )
        per_seed[ds.name] = seed_result
        pooled_y.append(y)
        pooled_sc.append(ds.arrays["scenario"][test])
        for name in LADDER:
            pooled_s[name].append(scores.get(name, np.full(len(test), np.nan)))
    y_all = np.concatenate(pooled_y)
    sc_all = np.concatenate(pooled_sc)
    summary = _summarise(per_seed, {m: np.concatenate(v) for m, v in pooled_s.items()}, y_all, sc_all)
    loso_result = (
        _leave_one_scenario_out(networks, val_networks, test_sets, test_from, cfg, log, gnn_epochs=loso_gnn_epochs)
        if loso
        else {}
    )
    production = _choose_production(summary)
    report = {
        "protocol": {
            "scale": scale,
            "train_seeds": train_seeds,
            "train_rate_scale": train_rate_scale,
            "val_seeds": val_seeds,
            "test_seeds": test_seeds,
            "test_from": test_from,
            "split": "by time within each network; test networks never seen in training",
            "label_free_fit": "each test network's own past (t < cut), no labels",
            "label_free_flag_share": LABEL_FREE_FLAG_SHARE,
            "simulator_code": _simulator_code(),
            "feature_code": _feature_code(),
            "operating_point": f"threshold from the training networks' validation period at precision "
            f">= {cfg.target_precision} and <= {cfg.max_false_flag_rate * 1000:g} false flags per 1,000",
            "config": cfg.as_dict(),
        },
        "train": {
            "seconds": round(train_seconds, 1),
            "timings": trained.get("timings", {}),
            "thresholds": {k: _nan(v) for k, v in thresholds.items()},
            "validation_auprc": {k: _nan(M.auprc(trained["val"]["y"], s)) for k, s in trained["val"]["scores"].items()},
            "importance": trained["lightgbm_all"].importance(20) if "lightgbm_all" in trained else [],
        },
        "per_seed": per_seed,
        "summary": summary,
        "loso": loso_result,
        "production": production,
        "seconds": round(time.monotonic() - started, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _curves(out_dir, {m: np.concatenate(v) for m, v in pooled_s.items()}, y_all, per_seed)
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    (out_dir / "evaluation.md").write_text(render_markdown(report))
    log(f"report: {out_dir / 'evaluation.md'} ({report['seconds']:.0f}s); production scorer: {production['model']}")
    return report


def _simulator_code() -> str:
    from anomaly.datasets import simulator_code_version

    return simulator_code_version()


def _feature_code() -> str:
    from anomaly.datasets import feature_version

    return feature_version()


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return _nan(float(o))
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def _metrics(
    y: np.ndarray, s: np.ndarray, thr: float, scenario: np.ndarray, camo: np.ndarray, tags: np.ndarray
) -> dict[str, Any]:
    at = M.at_threshold(y, s, thr)
    per_scenario: dict[str, Any] = {}
    flagged = s >= thr
    fps: dict[str, int] = {}
    for tag in sorted({str(t) for t in tags[(y == 0) & flagged]}):
        fps[tag or "(none)"] = int(((tags == tag) & (y == 0) & flagged).sum())
    for name in sorted({str(x) for x in scenario[y == 1]}):
        m = (scenario == name) & (y == 1)
        per_scenario[name] = {
            "positives": int(m.sum()),
            "detected": int((flagged & m).sum()),
            "camouflaged": int((m & (camo == 1)).sum()),
            "camouflaged_detected": int((flagged & m & (camo == 1)).sum()),
            "recall_at_p90_threshold_free": _nan(_scenario_recall_at_precision(y, s, m, 0.90)),
        }
    return {
        "auprc": _nan(M.auprc(y, s)),
        "auroc": _nan(M.auroc(y, s)),
        "recall_at_p90": _nan(M.recall_at_precision(y, s, 0.90)),
        "recall_at_p95": _nan(M.recall_at_precision(y, s, 0.95)),
        "threshold": _nan(thr),
        "at_threshold": {k: _nan(v) for k, v in at.items()},
        "per_scenario": per_scenario,
        "false_flags_by_lookalike": fps,
    }


def _scenario_recall_at_precision(y: np.ndarray, s: np.ndarray, m: np.ndarray, precision: float) -> float:
    """Recall of one scenario at the lowest threshold whose overall precision is at least ``precision``."""
    thr = M.threshold_for_precision(y, s, precision)
    return float(((s >= thr) & m).sum() / max(m.sum(), 1))


def _summarise(
    per_seed: dict[str, Any], pooled: dict[str, np.ndarray], y: np.ndarray, scenario: np.ndarray
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LADDER:
        rows = [r["models"][name] for r in per_seed.values() if name in r["models"]]
        if not rows:
            continue
        entry: dict[str, Any] = {}
        for key in ("auprc", "auroc", "recall_at_p90", "recall_at_p95"):
            mean, ci = M.mean_ci([r[key] if r[key] is not None else float("nan") for r in rows])
            entry[key] = {"mean": _nan(mean), "ci95": _nan(ci)}
        for key in ("precision", "recall", "false_flags_per_10k"):
            vals = [r["at_threshold"][key] for r in rows]
            mean, ci = M.mean_ci([v if v is not None else float("nan") for v in vals])
            entry[f"op_{key}"] = {"mean": _nan(mean), "ci95": _nan(ci)}
        s = pooled[name]
        ok = ~np.isnan(s)
        entry["pooled_auprc"] = _nan(M.auprc(y[ok], s[ok]))
        scen: dict[str, Any] = {}
        for sc in sorted({str(x) for x in scenario[y == 1]}):
            per = [r["per_scenario"].get(sc) for r in rows]
            recalls = [p["detected"] / p["positives"] for p in per if p and p["positives"]]
            k = sum(p["detected"] for p in per if p)
            n = sum(p["positives"] for p in per if p)
            kc = sum(p["camouflaged_detected"] for p in per if p)
            nc = sum(p["camouflaged"] for p in per if p)
            mean, ci = M.mean_ci(recalls)
            lo, hi = M.wilson(k, n)
            free = [
                p["recall_at_p90_threshold_free"] for p in per if p and p["recall_at_p90_threshold_free"] is not None
            ]
            scen[sc] = {
                "positives": n,
                "recall": _nan(k / n) if n else None,
                "recall_seed_mean": _nan(mean),
                "recall_seed_ci95": _nan(ci),
                "recall_wilson95": [_nan(lo), _nan(hi)],
                "camouflaged_positives": nc,
                "camouflaged_recall": _nan(kc / nc) if nc else None,
                "recall_at_p90_mean": _nan(float(np.mean(free))) if free else None,
            }
        entry["per_scenario"] = scen
        fps: dict[str, int] = {}
        for r in rows:
            for tag, count in r["false_flags_by_lookalike"].items():
                fps[tag] = fps.get(tag, 0) + count
        entry["false_flags_by_lookalike"] = fps
        out[name] = entry
    return out


def _leave_one_scenario_out(
    networks: list,
    val_networks: list | None,
    test_sets: list[Dataset],
    test_from: float,
    cfg: TrainConfig,
    log: Log,
    gnn_epochs: int = 0,
) -> dict[str, Any]:
    """Retrain LightGBM (with history) without one scenario's positives; its recall on that scenario when tested.
    With ``gnn_epochs``, the GNN too (for that many epochs at most: a full retraining per scenario is long)."""
    import dataclasses

    from anomaly.ml.baselines import LightGBMScorer
    from anomaly.ml.train import _split_by_time, _usable

    scenarios = sorted({str(s) for ds in test_sets for s in ds.arrays["scenario"][ds.y == 1]})
    out: dict[str, Any] = {}
    parts = []
    if val_networks:
        parts = [(arrays, _usable(arrays, edges), edges[:0]) for arrays, edges in networks]
        parts += [(arrays, edges[:0], _usable(arrays, edges)) for arrays, edges in val_networks]
    else:
        for arrays, edges in networks:
            fit, val = _split_by_time(arrays, _usable(arrays, edges), cfg.val_share)
            parts.append((arrays, fit, val))
    for sc in scenarios:

        def rows(which: int, sc: str = sc) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = [], []
            for arrays, fit, val in parts:
                e = fit if which == 0 else val
                keep = arrays["scenario"][e] != sc  # the held-out scenario's positives are never shown
                xs.append(arrays["x"][e[keep]])
                ys.append(arrays["label"][e[keep]])
            return np.vstack(xs), np.concatenate(ys).astype(np.int64)

        x_fit, y_fit = rows(0)
        x_val, y_val = rows(1)
        model = LightGBMScorer(view="all", rounds=cfg.lgbm_rounds, seed=cfg.seed).fit(
            x_fit, y_fit, x_val=x_val, y_val=y_val
        )
        thr = M.threshold_for_precision(
            y_val, model.predict(x_val), cfg.target_precision, max_fpr=cfg.max_false_flag_rate
        )
        out[sc] = _held_out_recall(model.score, sc, test_sets, test_from, thr)
        log(f"  leave-one-scenario-out {sc}: recall {out[sc]['recall']} on {out[sc]['positives']} positives")
        if gnn_epochs:
            out[sc]["gnn"] = _loso_gnn(parts, sc, test_sets, test_from, dataclasses.replace(cfg, max_epochs=gnn_epochs))
            log(f"  leave-one-scenario-out {sc}, GNN: recall {out[sc]['gnn']['recall']}")
    return {"model": "lightgbm_all", "gnn_epochs": gnn_epochs, "scenarios": out}


def _loso_gnn(parts: list, sc: str, test_sets: list[Dataset], test_from: float, cfg: TrainConfig) -> dict[str, Any]:
    """The GNN retrained with the scenario's positives taken out of its targets (the transfers stay in the graph:
    they are ledger entries, and no label of theirs is read)."""
    from anomaly.ml.train import train_gnn

    def without(arrays: dict, edges: np.ndarray) -> np.ndarray:
        return edges[arrays["scenario"][edges] != sc]

    fit = [(a, without(a, f)) for a, f, _v in parts if len(f)]
    val = [(a, without(a, v)) for a, _f, v in parts if len(v)]
    gnn = train_gnn(fit, val, cfg, log=lambda _m: None)
    y_val = np.concatenate([a["label"][e] for a, e in val]).astype(np.int64)
    s_val = np.concatenate([gnn.score(a, e) for a, e in val])
    thr = M.threshold_for_precision(y_val, s_val, cfg.target_precision, max_fpr=cfg.max_false_flag_rate)
    held_out = _held_out_recall(gnn.score, sc, test_sets, test_from, thr)
    held_out.pop("positives")
    return held_out


def _held_out_recall(score: Any, sc: str, test_sets: list[Dataset], test_from: float, thr: float) -> dict[str, Any]:
    """A held-out scenario's recall at ``thr`` (Wilson interval) and its AUPRC against the clean transfers, over
    the test networks' later part; retracted transfers score 0."""
    k = n = 0
    auprcs = []
    for ds in test_sets:
        test = np.flatnonzero(ds.after(test_from))
        s = np.where(ds.arrays["retracted"][test], 0.0, score(ds.arrays, test))
        m = (ds.arrays["scenario"][test] == sc) & (ds.y[test] == 1)
        k += int(((s >= thr) & m).sum())
        n += int(m.sum())
        keep = (ds.y[test] == 0) | m
        if m.sum():
            auprcs.append(M.auprc(ds.y[test][keep], s[keep]))
    lo, hi = M.wilson(k, n)
    return {
        "positives": n,
        "recall": _nan(k / n) if n else None,
        "wilson95": [_nan(lo), _nan(hi)],
        "auprc_vs_clean_mean": _nan(float(np.mean(auprcs))) if auprcs else None,
    }


def _choose_production(summary: dict[str, Any]) -> dict[str, Any]:
    """The supervised scorer with the best mean AUPRC over test networks; the simpler one wins a tie (< 0.005)."""
    order = ["rules+lightgbm_all", "rules+blend", "lightgbm_all", "blend", "gnn", "lightgbm_own"]  # simplest first
    best = None
    for name in order:
        if name not in summary or summary[name]["auprc"]["mean"] is None:
            continue
        value = summary[name]["auprc"]["mean"]
        if best is None or value > best[1] + 0.005:
            best = (name, value)
    baselines = {
        k: summary[k]["auprc"]["mean"] for k in ("rules", "iforest", "lightgbm_own", "lightgbm_all") if k in summary
    }
    return {"model": best[0] if best else "rules", "auprc": best[1] if best else None, "baselines": baselines}


def _curves(out_dir: Path, pooled: dict[str, np.ndarray], y: np.ndarray, per_seed: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(figsize=(7, 5.5))
    for name in LADDER:
        s = pooled.get(name)
        if s is None or np.isnan(s).all() or not y.sum():
            continue
        p, r, _ = precision_recall_curve(y, s)
        ax.plot(r, p, label=f"{TITLES[name]} (AUPRC {M.auprc(y, s):.3f})", linewidth=1.4)
    ax.axhline(0.9, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Precision-recall, pooled over {len(per_seed)} held-out networks (test period)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out_dir / "evaluation-pr.png", dpi=120)
    plt.close(fig)


def _aims(report: dict[str, Any]) -> list[str]:
    """The issue's aims against what was reached, said plainly."""
    s = report["summary"]
    name = report["production"]["model"]
    served = f"rules+{name}" if f"rules+{name}" in s else name
    e, sv = s.get(name), s.get(served)
    if not e or not sv:
        return []
    auprc = e["auprc"]["mean"]
    baselines = {k: s[k]["auprc"]["mean"] for k in ("rules", "iforest", "lightgbm_own") if k in s}
    best_base = max(baselines.items(), key=lambda kv: kv[1] if kv[1] is not None else -1)
    per = sv["per_scenario"]
    reached = [sc for sc, v in per.items() if (v.get("recall_at_p90_mean") or 0) >= 0.9]
    missed = {sc: v.get("recall_at_p90_mean") for sc, v in per.items() if sc not in reached}
    ff = sv["op_false_flags_per_10k"]["mean"]
    return [
        "## Aims and what was reached",
        "",
        f"- Overall AUPRC ≥ 0.95 on held-out networks: **{auprc:.3f}** for `{name}` — not reached."
        if auprc < 0.95
        else f"- Overall AUPRC ≥ 0.95 on held-out networks: **{auprc:.3f}** for `{name}` — reached.",
        "- Recall ≥ 0.90 at precision 0.90 for every scenario (served stack; a scenario's recall at the threshold "
        "where its network's overall precision is 0.90, mean over networks): reached for "
        f"{', '.join(sorted(reached)) or 'none'}; not for "
        + ", ".join(f"{sc} ({v:.2f})" if v is not None else f"{sc} (n/a)" for sc, v in sorted(missed.items()))
        + ".",
        f"- Production at least as good as the best baseline on the same split: `{name}` {auprc:.3f} against "
        f"`{best_base[0]}` {best_base[1]:.3f} — {'reached' if auprc >= (best_base[1] or 0) else 'not reached'}.",
        f"- At most 1 false flag per 1,000 clean transfers at the operating threshold (10 per 10,000): served stack "
        f"{ff:.1f} per 10,000 — {'reached' if ff <= 10 else 'not reached'}; the model alone "
        f"{e['op_false_flags_per_10k']['mean']:.1f}.",
        "",
    ]


def _fmt(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    ci = entry.get("ci95")
    return f"{entry['mean']:.3f}" + (f" ± {ci:.3f}" if ci is not None else "")


def render_markdown(report: dict[str, Any]) -> str:
    p = report["protocol"]
    s = report["summary"]
    lines = [
        "# Evaluation of the transfer scorers",
        "",
        f"Generated by `python manage.py evaluate --seeds {','.join(map(str, p['test_seeds']))} "
        f"--train-seeds {','.join(map(str, p['train_seeds']))} --train-rate-scale {p['train_rate_scale']:g} "
        f"--val-seeds {','.join(map(str, p['val_seeds']))} --scale {p['scale']}"
        + (f" --loso-gnn-epochs {report['loso']['gnn_epochs']}" if (report.get("loso") or {}).get("gnn_epochs") else "")
        + "` "
        f"in {report['seconds']:.0f} s on this machine. Figures are means over the {len(p['test_seeds'])} held-out "
        "networks with 95% t-intervals across networks (±); per-scenario intervals are Wilson intervals over the "
        "pooled incidents' transfers.",
        "",
        "## Protocol",
        "",
        f"- Supervised models train on simulated networks (seeds {p['train_seeds']}, incident rates "
        f"x{p['train_rate_scale']:g} so that there is something to learn from), stop early and set their operating "
        f"threshold on validation networks at the ordinary incident rate (seeds {p['val_seeds']}), and are tested on "
        f"other networks (seeds {p['test_seeds']}, ordinary rates) they never saw, all at scale `{p['scale']}`.",
        f"- Each network's period is cut at {p['test_from']:.0%} of its span: training and validation use only the "
        "earlier part of their networks, testing scores the test networks' later part. A "
        "test transfer's features and the GNN's message passing use only ledger entries recorded before it.",
        f"- Label-free models fit on each test network's own earlier part, without labels, and flag its most "
        f"unusual {p['label_free_flag_share']:.1%}.",
        f"- Operating point: {p['operating_point']}. Rules flag on any hit.",
        f"- Labels are the simulator's ground truth (simulator code `{p.get('simulator_code', '?')}`, feature code "
        f"`{p.get('feature_code', '?')}`): figures from another simulator version are not comparable.",
        "",
        "## All models side by side",
        "",
        "| model | AUPRC | AUROC | recall @ P0.90 | recall @ P0.95 | precision at op. | recall at op. "
        "| false flags / 10k clean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in LADDER:
        if name not in s:
            continue
        e = s[name]
        lines.append(
            f"| {TITLES[name]} | {_fmt(e['auprc'])} | {_fmt(e['auroc'])} | {_fmt(e['recall_at_p90'])} | "
            f"{_fmt(e['recall_at_p95'])} | {_fmt(e['op_precision'])} | {_fmt(e['op_recall'])} | "
            f"{_fmt(e['op_false_flags_per_10k'])} |"
        )
    lines += ["", "![precision-recall curves](evaluation-pr.png)", ""]
    prod = report["production"]
    lines += _aims(report)
    lines += [
        "## Production scorer",
        "",
        f"**{TITLES.get(prod['model'], prod['model'])}** (`{prod['model']}`), mean held-out AUPRC {prod['auprc']:.3f}."
        if prod.get("auprc") is not None
        else f"**{prod['model']}**.",
        "It is the supervised scorer with the best mean AUPRC on the held-out networks; between scorers within "
        "0.005 of each other the simpler one is kept (trees before the stack before the GNN). As served, the exact "
        'rules (`rules.FLAGGING`) flag on their own as well: that is the row "Served: exact rules flag, else ..." '
        "above. Every rule hit is also a feature of every model.",
        "",
        "## Recall per scenario at the operating threshold",
        "",
    ]
    scenarios = sorted({sc for e in s.values() for sc in e["per_scenario"]})
    shown = [m for m in ("rules", "iforest", "linkpred", "lightgbm_all", "gnn", "blend") if m in s]
    if prod["model"] not in shown and prod["model"] in s:
        shown.append(prod["model"])
    lines.append("| scenario | positives | " + " | ".join(shown) + " | camouflaged: " + prod["model"] + " |")
    lines.append("|---|---|" + "---|" * len(shown) + "---|")
    for sc in scenarios:
        row = [sc]
        n = next((s[m]["per_scenario"][sc]["positives"] for m in shown if sc in s[m]["per_scenario"]), 0)
        row.append(str(n))
        for m in shown:
            v = s[m]["per_scenario"].get(sc)
            if not v or v["recall"] is None:
                row.append("n/a")
                continue
            lo, hi = v["recall_wilson95"]
            row.append(f"{v['recall']:.2f} [{lo:.2f}, {hi:.2f}]")
        pm = s.get(prod["model"], {}).get("per_scenario", {}).get(sc)
        row.append(
            f"{pm['camouflaged_recall']:.2f} of {pm['camouflaged_positives']}"
            if pm and pm["camouflaged_recall"] is not None
            else "none"
        )
        lines.append("| " + " | ".join(row) + " |")
    if report.get("loso"):
        gnn_epochs = report["loso"].get("gnn_epochs") or 0
        title = "LightGBM with history" + (f" and the GNN ({gnn_epochs} epochs at most)" if gnn_epochs else "")
        head = "| held-out scenario | positives | LightGBM recall at op. [Wilson 95%] | LightGBM AUPRC vs clean |"
        rule = "|---|---|---|---|"
        if gnn_epochs:
            head += " GNN recall at op. [Wilson 95%] | GNN AUPRC vs clean |"
            rule += "---|---|"
        lines += ["", f"## Leave one scenario out ({title}, retrained without the scenario)", "", head, rule]

        def cells(v: dict[str, Any]) -> str:
            lo, hi = v["wilson95"]
            rec = "n/a" if v["recall"] is None else f"{v['recall']:.2f} [{lo:.2f}, {hi:.2f}]"
            au = "n/a" if v["auprc_vs_clean_mean"] is None else f"{v['auprc_vs_clean_mean']:.3f}"
            return f"{rec} | {au}"

        for sc, v in report["loso"]["scenarios"].items():
            text = f"| {sc} | {v['positives']} | {cells(v)} |"
            if gnn_epochs and "gnn" in v:
                text += f" {cells(v['gnn'])} |"
            lines.append(text)
    if prod["model"] in s:
        fps = s[prod["model"]]["false_flags_by_lookalike"]
        if fps:
            lines += [
                "",
                f"False flags of `{prod['model']}` at the operating threshold, by benign look-alike tag: "
                + ", ".join(f"{k} {v}" for k, v in sorted(fps.items(), key=lambda kv: -kv[1]))
                + ".",
            ]
    t = report["train"]
    lines += [
        "",
        "## Training",
        "",
        f"Supervised training took {t['seconds']:.0f} s ({', '.join(f'{k} {v} s' for k, v in t['timings'].items())}) "
        "on 2 CPU cores.",
        "",
        "Most important features of LightGBM (gain): " + ", ".join(f"`{n}`" for n, _ in t["importance"][:12]) + ".",
        "",
    ]
    return "\n".join(lines) + "\n"
