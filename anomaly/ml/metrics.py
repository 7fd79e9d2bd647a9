"""Metrics for rare-event ranking (no Django): AUPRC first, recall at fixed precision, false flags per 10k."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def auprc(y: np.ndarray, s: np.ndarray) -> float:
    return float(average_precision_score(y, s)) if y.sum() and (1 - y).sum() else float("nan")


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if y.sum() and (1 - y).sum() else float("nan")


def recall_at_precision(y: np.ndarray, s: np.ndarray, precision: float) -> float:
    if not y.sum():
        return float("nan")
    p, r, _ = precision_recall_curve(y, s)
    ok = p >= precision
    return float(r[ok].max()) if ok.any() else 0.0


def threshold_for_precision(y: np.ndarray, s: np.ndarray, precision: float, *, max_fpr: float | None = None) -> float:
    """The lowest threshold whose precision is at least ``precision`` (and false-flag rate at most ``max_fpr``)."""
    if not y.sum():
        return float(np.max(s)) + 1e-9 if len(s) else 1.0
    p, _r, thr = precision_recall_curve(y, s)
    neg = max(int((1 - y).sum()), 1)
    best = None
    for i, t in enumerate(thr):
        if p[i] < precision:
            continue
        if max_fpr is not None:
            fp = int(((s >= t) & (y == 0)).sum())
            if fp / neg > max_fpr:
                continue
        best = t if best is None else min(best, t)
    return float(best) if best is not None else float(np.max(s)) + 1e-9


def at_threshold(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = s >= threshold
    tp = int((flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    neg = int((y == 0).sum())
    pos = int(y.sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / pos if pos else float("nan"),
        "false_flags_per_10k": 1e4 * fp / neg if neg else float("nan"),
        "flagged": int(flagged.sum()),
    }


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval over seeds (NaNs dropped)."""
    v = np.array([x for x in values if not (isinstance(x, float) and math.isnan(x))], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float("nan")
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}.get(len(v), 2.0)
    return float(v.mean()), float(t95 * v.std(ddof=1) / math.sqrt(len(v)))


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion (for pooled per-scenario recall)."""
    if n == 0:
        return float("nan"), float("nan")
    z = 1.96
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)
