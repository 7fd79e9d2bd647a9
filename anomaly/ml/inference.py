"""A trained bundle as a scorer (no Django): load once per worker, score transfers, explain a score.

A bundle is one file (torch.save of plain data: LightGBM model text, network state dicts, the isolation
forest), written to a temporary name and renamed, with a format version. The registry keeps its SHA-256;
the service refuses a file whose digest differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.ml.baselines import IsolationForestScorer, LightGBMScorer
from anomaly.ml.replay import FEATURES

FORMAT_VERSION = 1
PRODUCTION_CHOICES = ("lightgbm_all", "lightgbm_own", "gnn", "blend", "linkpred", "iforest")


def save_bundle(
    path: Path,
    *,
    components: dict[str, Any],
    production: str,
    threshold: float,
    thresholds: dict[str, float],
    config: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    import torch

    if production not in PRODUCTION_CHOICES:
        raise ValueError(f"production must be one of {PRODUCTION_CHOICES}")
    states = {name: c.state() for name, c in components.items()}
    bundle = {
        "format_version": FORMAT_VERSION,
        "features": list(FEATURES),
        "production": production,
        "threshold": float(threshold),
        "thresholds": {k: float(v) for k, v in thresholds.items()},
        "components": states,
        "config": config,
        "meta": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(bundle, tmp)
    os.replace(tmp, path)


def load_scorer(path: Path) -> BundleScorer:
    import torch

    bundle = torch.load(path, map_location="cpu", weights_only=False)  # our own artifact, checked by SHA-256
    if bundle.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: bundle format {bundle.get('format_version')}, this code reads {FORMAT_VERSION}")
    if bundle["features"] != list(FEATURES):
        raise ValueError(f"{path}: trained on other features than this code computes; train a new version")
    return BundleScorer(bundle)


class BundleScorer:
    def __init__(self, bundle: dict[str, Any]) -> None:
        from anomaly.ml.train import GraphScorer

        self.bundle = bundle
        self.production = bundle["production"]
        self.threshold = bundle["threshold"]
        self.components: dict[str, Any] = {}
        for name, state in bundle["components"].items():
            if name.startswith("lightgbm"):
                self.components[name] = LightGBMScorer.from_state(state)
            elif name == "iforest":
                self.components[name] = IsolationForestScorer.from_state(state)
            elif name in ("gnn", "linkpred"):
                self.components[name] = GraphScorer.from_state(state)

    @property
    def kind(self) -> str:
        return self.production

    def component_scores(
        self, arrays: dict[str, np.ndarray], edges: np.ndarray, names: list[str]
    ) -> dict[str, np.ndarray]:
        from anomaly.ml.train import blend

        out: dict[str, np.ndarray] = {}
        for name in names:
            if name == "blend":
                a = out.get("lightgbm_all", self.components["lightgbm_all"].score(arrays, edges))
                b = out.get("gnn", self.components["gnn"].score(arrays, edges))
                out["blend"] = blend(a, b)
            elif name in self.components:
                out[name] = self.components[name].score(arrays, edges)
        return out

    def score(self, arrays: dict[str, np.ndarray], edges: np.ndarray) -> np.ndarray:
        edges = np.asarray(edges, dtype=np.int64)
        s = self.component_scores(arrays, edges, [self.production])[self.production]
        return np.where(arrays["retracted"][edges], 0.0, s)

    def explain_many(self, arrays: dict[str, np.ndarray], edges: np.ndarray, *, top: int = 8) -> list[dict[str, Any]]:
        """The scoring path's explanation of many transfers at once: the production score and TreeSHAP in one
        pass each, and the neighbouring transfers by rule hits; the graph models' view comes later (deep)."""
        edges = np.asarray(edges, dtype=np.int64)
        if len(edges) == 0:
            return []
        scores = self.component_scores(arrays, edges, [self.production])[self.production]
        tree = self.components.get("lightgbm_all") or self.components.get("lightgbm_own")
        features = tree.contributions_many(arrays["x"][edges], top=top) if tree is not None else [[]] * len(edges)
        return [
            {
                "production": self.production,
                "components": {self.production: round(float(scores[i]), 4)},
                "method": "treeshap" if tree is not None else "none",
                "features": features[i],
                "deep": False,
                "neighbour_method": "earlier transfers into the sender and of the same lot, by rule hits",
                "neighbour_edges": heuristic_neighbours(arrays, int(edge), top=5),
            }
            for i, edge in enumerate(edges)
        ]

    def explain(self, arrays: dict[str, np.ndarray], edge: int, *, top: int = 8, deep: bool = False) -> dict[str, Any]:
        """The features and the earlier neighbouring transfers that drove this transfer's score.

        ``deep=False`` (the scoring path) costs about a millisecond: tree attributions, the cheap components and
        the neighbouring transfers by rule hits. ``deep=True`` (a task after the flag is raised) adds the graph
        models' scores and the GNN's gradient attribution over the transfers it read."""
        edges = np.array([edge], dtype=np.int64)
        cheap = ("lightgbm_all", "lightgbm_own", "iforest")
        wanted = ("lightgbm_all", "gnn", "linkpred", "iforest")
        names: list[str] = [n for n in wanted if n in self.components and (deep or n in cheap or n == self.production)]
        if self.production == "blend":
            names.append("blend")
        scores = {k: round(float(v[0]), 4) for k, v in self.component_scores(arrays, edges, names).items()}
        out: dict[str, Any] = {"production": self.production, "components": scores}
        novelty = [scores[n] for n in ("linkpred", "iforest") if n in scores]
        if novelty:
            out["novelty"] = round(max(novelty), 4)
        tree = self.components.get("lightgbm_all") or self.components.get("lightgbm_own")
        if tree is not None:
            out["method"] = "treeshap"
            out["features"] = tree.contributions(arrays["x"][edge], top=top)
        gnn = self.components.get("gnn") if deep or tree is None else None
        out["deep"] = gnn is not None
        if gnn is not None:
            out["neighbour_method"] = "gradient x input on the earlier transfers the GNN read"
            out["neighbour_edges"] = gnn.neighbour_attribution(arrays, int(edge), top=5)
            if tree is None:
                out["method"] = "gradient x input"
                out["features"] = gnn.feature_attribution(arrays, int(edge), top=top)
        else:
            out["neighbour_method"] = "earlier transfers into the sender and of the same lot"
            out["neighbour_edges"] = heuristic_neighbours(arrays, int(edge), top=5)
        return out


def relation(arrays: dict[str, np.ndarray], edge: int, other: int) -> str:
    src, dst, lot = arrays["src"], arrays["dst"], arrays["lot"]
    if dst[other] == src[edge]:
        return "into the sender" + (" (same lot)" if lot[other] == lot[edge] else "")
    if dst[other] == dst[edge]:
        return "into the receiver"
    if src[other] == src[edge]:
        return "from the sender"
    if lot[other] == lot[edge]:
        return "same lot"
    return "two hops away"


def heuristic_neighbours(arrays: dict[str, np.ndarray], edge: int, top: int = 5) -> list[tuple[int, float, str]]:
    """Earlier transfers into the sender, of the same lot, or between the same parties: the most suspicious first."""
    seq = arrays["seq_create"]
    end = int(np.searchsorted(seq, seq[edge], side="left"))
    start = max(0, end - 50_000)
    idx = np.arange(start, end)
    src, dst, lot = arrays["src"], arrays["dst"], arrays["lot"]
    near = idx[(dst[idx] == src[edge]) | (lot[idx] == lot[edge]) | (dst[idx] == dst[edge])]
    if len(near) == 0:
        return []
    weight = arrays["n_hits"][near].astype(float) + 0.5 * (lot[near] == lot[edge]) + 0.25 * (dst[near] == src[edge])
    weight = weight + 1e-3 * (near - near.min()) / max(1, near.max() - near.min() + 1)  # recency breaks ties
    order = np.argsort(-weight)[:top]
    return [(int(near[i]), float(weight[i]), relation(arrays, edge, int(near[i]))) for i in order]
