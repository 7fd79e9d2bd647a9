"""Training (no Django): the supervised models on labelled (simulated or reviewed) networks, the label-free
models on a deployment's own history, and the operating threshold. ``train_components`` is importable; the
``train_model`` command and the Celery task are thin wrappers around it.

Splits respect time: in every training network the latest ``val_share`` of its training period validates
(early stopping, operating threshold), and nothing after the period is ever used.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from anomaly.ml.baselines import IsolationForestScorer, LightGBMScorer, rules_scores
from anomaly.ml.config import TrainConfig
from anomaly.ml.metrics import auprc, threshold_for_precision

logger = logging.getLogger(__name__)

Network = tuple[dict[str, np.ndarray], np.ndarray]  # (arrays of one network, its training edges)
Log = Callable[[str], None]


def _split_by_time(arrays: dict[str, np.ndarray], edges: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    t = arrays["t_create"][edges]
    if len(t) == 0:
        return edges, edges[:0]
    cut = t.min() + (1.0 - share) * (t.max() - t.min())
    return edges[t < cut], edges[t >= cut]


def _usable(arrays: dict[str, np.ndarray], edges: np.ndarray) -> np.ndarray:
    return edges[~arrays["retracted"][edges]] if "retracted" in arrays else edges


def train_supervised(
    networks: list[Network], cfg: TrainConfig, log: Log = print, val_networks: list[Network] | None = None
) -> dict[str, Any]:
    """LightGBM (own features; with history and aggregates) and the heterogeneous GNN, on labelled networks.

    Validation (early stopping, operating threshold) uses ``val_networks`` when given (networks with the
    deployment's own base rate, so that the threshold's precision carries over), else the latest
    ``val_share`` of each training network's period.
    """
    started = time.monotonic()
    fit_parts, val_parts = [], []
    for arrays, edges in networks:
        edges = _usable(arrays, edges)
        if val_networks is None:
            fit, val = _split_by_time(arrays, edges, cfg.val_share)
            val_parts.append((arrays, val))
        else:
            fit = edges
        fit_parts.append((arrays, fit))
    for arrays, edges in val_networks or []:
        val_parts.append((arrays, _usable(arrays, edges)))
    x_fit = np.vstack([a["x"][e] for a, e in fit_parts])
    y_fit = np.concatenate([a["label"][e] for a, e in fit_parts]).astype(np.int64)
    x_val = np.vstack([a["x"][e] for a, e in val_parts])
    y_val = np.concatenate([a["label"][e] for a, e in val_parts]).astype(np.int64)
    log(
        f"supervised: {len(y_fit)} transfers to fit ({int(y_fit.sum())} positive), {len(y_val)} to validate "
        f"({int(y_val.sum())} positive) from {len(networks)} network(s)"
    )
    out: dict[str, Any] = {"val": {"y": y_val}, "timings": {}}
    val_scores: dict[str, np.ndarray] = {"rules": np.concatenate([rules_scores(a, e) for a, e in val_parts])}
    for view in ("all", "own"):
        name = f"lightgbm_{view}"
        if name not in cfg.components:
            continue
        t0 = time.monotonic()
        model = LightGBMScorer(view=view, rounds=cfg.lgbm_rounds, seed=cfg.seed)
        model.fit(x_fit, y_fit, x_val=x_val, y_val=y_val)
        out[name] = model
        val_scores[name] = model.predict(x_val)
        out["timings"][name] = round(time.monotonic() - t0, 1)
        log(
            f"  {name}: {model.best_rounds} rounds, validation AUPRC {auprc(y_val, val_scores[name]):.3f} "
            f"({out['timings'][name]}s)"
        )
    if "gnn" in cfg.components:
        t0 = time.monotonic()
        gnn = train_gnn(fit_parts, val_parts, cfg, log=log)
        out["gnn"] = gnn
        val_scores["gnn"] = np.concatenate([gnn.score(a, e) for a, e in val_parts]) if len(y_val) else np.zeros(0)
        out["timings"]["gnn"] = round(time.monotonic() - t0, 1)
        log(f"  gnn: validation AUPRC {auprc(y_val, val_scores['gnn']):.3f} ({out['timings']['gnn']}s)")
        if "lightgbm_all" in out:
            val_scores["blend"] = blend(val_scores["lightgbm_all"], val_scores["gnn"])
    out["val"]["scores"] = val_scores
    out["thresholds"] = {
        name: threshold_for_precision(y_val, s, cfg.target_precision, max_fpr=cfg.max_false_flag_rate)
        for name, s in val_scores.items()
    }
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def blend(p_trees: np.ndarray, p_gnn: np.ndarray) -> np.ndarray:
    """Stack of the tree and graph scores: the mean of their log-odds."""
    eps = 1e-6
    a = np.clip(p_trees, eps, 1 - eps)
    b = np.clip(p_gnn, eps, 1 - eps)
    z = 0.5 * (np.log(a / (1 - a)) + np.log(b / (1 - b)))
    return 1.0 / (1.0 + np.exp(-z))


def _trainer(cfg: TrainConfig, max_epochs: int, root: str, monitor: bool) -> Any:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    callbacks = []
    if monitor and not cfg.fast_dev_run:
        callbacks = [
            ModelCheckpoint(dirpath=root, monitor="val_auprc", mode="max", save_top_k=1, filename="best"),
            EarlyStopping(monitor="val_auprc", mode="max", patience=cfg.patience),
        ]
    return L.Trainer(
        accelerator=cfg.accelerator,  # "auto": a GPU worker uses its GPU, a CPU worker its cores
        devices=1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=bool(callbacks),
        callbacks=callbacks,
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        fast_dev_run=cfg.fast_dev_run,
        default_root_dir=root,
    )


def _items(parts: list[Network], cfg: TrainConfig) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    from anomaly.ml.temporal import windows

    items = []
    for arrays, edges in parts:
        for w in windows(arrays, edges, cfg.window_days):
            items.append((arrays, w, arrays["label"][w] if "label" in arrays else np.ones(len(w))))
    return items


class GraphScorer:
    """A trained graph network with its feature normaliser: scores target edges window by window."""

    def __init__(self, kind: str, net: Any, norm: Any, cfg: TrainConfig, hparams: dict[str, Any]) -> None:
        self.kind = kind  # "gnn" (supervised edge scorer) or "linkpred" (label-free)
        self.net = net
        self.norm = norm
        self.cfg = cfg
        self.hparams = hparams

    def logits(self, arrays: dict[str, np.ndarray], edges: np.ndarray) -> np.ndarray:
        import torch

        from anomaly.ml.nets import to_tensors
        from anomaly.ml.temporal import snapshot, windows

        out = np.zeros(len(edges), dtype=np.float64)
        if len(edges) == 0:
            return out
        position = {int(e): i for i, e in enumerate(edges)}
        self.net.eval()
        with torch.no_grad():
            for w in windows(arrays, np.asarray(edges), self.cfg.window_days):
                g = to_tensors(snapshot(arrays, w, self.norm, lookback_days=self.cfg.lookback_days))
                values = self.net(g).cpu().numpy()
                for e, v in zip(w, values, strict=True):
                    out[position[int(e)]] = v
        return out

    def score(self, arrays: dict[str, np.ndarray], edges: np.ndarray) -> np.ndarray:
        z = self.logits(arrays, edges)
        p = 1.0 / (1.0 + np.exp(-z))
        return p if self.kind == "gnn" else 1.0 - p  # link prediction: how unexpected the transfer is

    def _attributions(self, arrays: dict[str, np.ndarray], edge: int) -> tuple[Any, Any, Any]:
        import torch

        from anomaly.ml.nets import to_tensors
        from anomaly.ml.temporal import snapshot

        s = snapshot(arrays, np.array([edge]), self.norm, lookback_days=self.cfg.lookback_days)
        g = to_tensors(s)
        g["msg_attr"].requires_grad_(True)
        g["tgt_attr"].requires_grad_(True)
        self.net.eval()
        with torch.enable_grad():
            logit = self.net(g)[0]
            logit.backward()
        return s, g, logit

    def neighbour_attribution(
        self, arrays: dict[str, np.ndarray], edge: int, top: int = 5
    ) -> list[tuple[int, float, str]]:
        """The earlier transfers whose attributes moved this score most (gradient x input, summed per transfer)."""
        from anomaly.ml.inference import relation

        s, g, _ = self._attributions(arrays, edge)
        if len(s.msg_edges) == 0:
            return []
        weight = (g["msg_attr"].grad * g["msg_attr"]).abs().sum(dim=1).detach().numpy()
        order = np.argsort(-weight)[:top]
        total = float(weight.sum()) or 1.0
        return [
            (int(s.msg_edges[i]), float(weight[i] / total), relation(arrays, edge, int(s.msg_edges[i])))
            for i in order
            if weight[i] > 0
        ]

    def feature_attribution(self, arrays: dict[str, np.ndarray], edge: int, top: int = 8) -> list[dict[str, Any]]:
        from anomaly.ml.replay import FEATURES

        _s, g, _ = self._attributions(arrays, edge)
        contrib = (g["tgt_attr"].grad * g["tgt_attr"])[0].detach().numpy()
        order = np.argsort(-np.abs(contrib))[:top]
        x = arrays["x"][edge]
        return [
            {"feature": FEATURES[i], "value": round(float(x[i]), 4), "contribution": round(float(contrib[i]), 4)}
            for i in order
        ]

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state_dict": {k: v.cpu() for k, v in self.net.state_dict().items()},
            "norm": self.norm.state(),
            "hparams": self.hparams,
            "cfg": self.cfg.as_dict(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GraphScorer:
        from anomaly.ml.nets import EdgeScorer, LinkScorer
        from anomaly.ml.temporal import Normalizer

        h = dict(state["hparams"])
        for key in ("lr", "weight_decay", "pos_weight"):
            h.pop(key, None)
        net = (EdgeScorer if state["kind"] == "gnn" else LinkScorer)(**h)
        net.load_state_dict(state["state_dict"])
        norm = Normalizer(np.asarray(state["norm"]["mean"]), np.asarray(state["norm"]["std"]))
        return cls(state["kind"], net, norm, TrainConfig.from_dict(state["cfg"]), state["hparams"])


def _fit_graph(
    kind: str, fit_parts: list[Network], val_parts: list[Network], cfg: TrainConfig, log: Log
) -> GraphScorer:
    import lightning as L
    from torch.utils.data import DataLoader

    from anomaly.ml.lit import EdgeClassifier, LinkPredictor, WindowSet, first
    from anomaly.ml.temporal import Normalizer

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    cfg.apply_threads()
    x_fit = np.vstack([a["x"][e] for a, e in fit_parts])
    norm = Normalizer.fit(x_fit)
    party_static = int(fit_parts[0][0]["party_static"].shape[1])
    n_features = int(x_fit.shape[1])
    negatives = 2 if kind == "linkpred" else 0
    train_set = WindowSet(
        _items(fit_parts, cfg), norm, lookback_days=cfg.lookback_days, negatives=negatives, seed=cfg.seed
    )
    val_items = _items(val_parts, cfg)
    val_set = WindowSet(val_items, norm, lookback_days=cfg.lookback_days, negatives=negatives, seed=cfg.seed + 1)
    if kind == "gnn":
        y = np.concatenate([a["label"][e] for a, e in fit_parts])
        pos_weight = float(min((len(y) - y.sum()) / max(y.sum(), 1), 20.0))
        module: Any = EdgeClassifier(
            party_static=party_static,
            edge_features=n_features,
            hidden=cfg.hidden,
            layers=cfg.layers,
            heads=cfg.heads,
            dropout=cfg.dropout,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            pos_weight=pos_weight,
        )
        epochs = cfg.max_epochs
    else:
        module = LinkPredictor(
            party_static=party_static,
            edge_features=n_features,
            hidden=cfg.link_hidden,
            layers=cfg.layers,
            heads=cfg.heads,
            dropout=cfg.dropout,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            pos_weight=1.0,
        )
        epochs = cfg.link_epochs
    log(f"  {kind}: {len(train_set)} training windows, {len(val_set)} validation windows, up to {epochs} epochs")
    with tempfile.TemporaryDirectory(prefix=f"{kind}-") as root:
        trainer = _trainer(cfg, epochs, root, monitor=len(val_set) > 0)
        loader = DataLoader(train_set, batch_size=1, shuffle=True, collate_fn=first)
        val_loader = DataLoader(val_set, batch_size=1, shuffle=False, collate_fn=first) if len(val_set) else None
        trainer.fit(module, loader, val_loader)
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
        if best:
            module = type(module).load_from_checkpoint(best, weights_only=False)
    hparams = dict(module.hparams)
    return GraphScorer(kind, module.net.cpu(), norm, cfg, hparams)


def train_gnn(fit_parts: list[Network], val_parts: list[Network], cfg: TrainConfig, log: Log = print) -> GraphScorer:
    return _fit_graph("gnn", fit_parts, val_parts, cfg, log)


def train_label_free(
    arrays: dict[str, np.ndarray], edges: np.ndarray, cfg: TrainConfig, log: Log = print
) -> dict[str, Any]:
    """The components that need no labels, fitted on one network's own history (a deployment's ledger)."""
    edges = _usable(arrays, edges)
    out: dict[str, Any] = {"timings": {}}
    log(f"label-free: {len(edges)} transfers of the network's own history")
    if "iforest" in cfg.components and len(edges):
        t0 = time.monotonic()
        out["iforest"] = IsolationForestScorer(n_estimators=cfg.iforest_trees, seed=cfg.seed).fit(arrays["x"][edges])
        out["timings"]["iforest"] = round(time.monotonic() - t0, 1)
    if "linkpred" in cfg.components and len(edges) >= 8:
        t0 = time.monotonic()
        fit, val = _split_by_time(arrays, edges, 0.2)
        out["linkpred"] = _fit_graph("linkpred", [(arrays, fit)], [(arrays, val)], cfg, log)
        out["timings"]["linkpred"] = round(time.monotonic() - t0, 1)
    return out


def finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)
