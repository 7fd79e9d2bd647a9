"""The baselines, in the same code path as the graph models (no Django): rules only, an isolation forest on
the transfer features, and LightGBM on the transfer's own features or with partner history and neighbour
aggregates. Every scorer has ``fit`` and ``score(arrays, edges)``; the tree models explain with TreeSHAP.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from anomaly.ml.data import feature_names, feature_view


def _threads() -> int:
    import os

    return int(os.environ.get("ANOMALY_TORCH_THREADS", "0")) or (os.cpu_count() or 1)


def rules_scores(arrays: dict[str, np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Rules only: 0 without hits, towards 1 with more distinct hits (as anomaly.rules.rules_score)."""
    n = arrays["n_hits"][edges].astype(np.float64)
    return np.where(n > 0, 1.0 - 0.5 ** (n + 1), 0.0)


class IsolationForestScorer:
    """Label-free: how isolated a transfer's features are among the network's own transfers."""

    name = "iforest"

    def __init__(self, *, view: str = "all", n_estimators: int = 200, seed: int = 0) -> None:
        self.view = view
        self.n_estimators = n_estimators
        self.seed = seed
        self.model: Any = None

    def fit(self, x: np.ndarray) -> IsolationForestScorer:
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1)
        self.model.fit(feature_view(x, self.view))
        return self

    def score(self, arrays: dict[str, np.ndarray], edges: np.ndarray) -> np.ndarray:
        raw = -self.model.score_samples(feature_view(arrays["x"][edges], self.view))
        return 1.0 / (1.0 + np.exp(-8.0 * (raw - 0.5)))  # score_samples is about -0.5 for ordinary points

    def state(self) -> dict[str, Any]:
        return {"view": self.view, "model": pickle.dumps(self.model)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IsolationForestScorer:
        s = cls(view=state["view"])
        s.model = pickle.loads(state["model"])  # noqa: S301 - our own artifact, checked by SHA-256
        return s


class LightGBMScorer:
    """Gradient-boosted trees on the transfer features ('own') or with history and aggregates ('all')."""

    def __init__(
        self,
        *,
        view: str = "all",
        rounds: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 10,
        seed: int = 0,
    ) -> None:
        self.view = view
        self.name = f"lightgbm_{view}"
        self.params = {
            "objective": "binary",
            "learning_rate": learning_rate,
            "num_leaves": num_leaves,
            "min_child_samples": min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": seed,
            "num_threads": _threads(),
            "verbose": -1,
        }
        self.rounds = rounds
        self.booster: Any = None
        self.best_rounds = rounds

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        extra: np.ndarray | None = None,
        extra_val: np.ndarray | None = None,
    ) -> LightGBMScorer:
        import lightgbm as lgb

        pos = max(int(y.sum()), 1)
        neg = max(int(len(y) - y.sum()), 1)
        params = dict(self.params, scale_pos_weight=float(min(neg / pos, 20.0)))
        train = lgb.Dataset(self._x(x, extra), label=y, feature_name=self._names(extra), free_raw_data=True)
        callbacks: list[Any] = []
        valid_sets = []
        if x_val is not None and y_val is not None and y_val.sum() > 0:
            valid_sets = [lgb.Dataset(self._x(x_val, extra_val), label=y_val, reference=train)]
            params["metric"] = "average_precision"
            callbacks.append(lgb.early_stopping(60, verbose=False))
        self.booster = lgb.train(params, train, num_boost_round=self.rounds, valid_sets=valid_sets, callbacks=callbacks)
        self.best_rounds = int(self.booster.best_iteration or self.rounds)
        return self

    def _x(self, x: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        v = feature_view(x, self.view)
        return np.hstack([v, extra]) if extra is not None else v

    def _names(self, extra: np.ndarray | None) -> list[str]:
        names = feature_names(self.view)
        if extra is not None:
            names = names + [f"extra_{i}" for i in range(extra.shape[1])]
        return names

    def predict(self, x: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        return self.booster.predict(self._x(x, extra), num_iteration=self.best_rounds)

    def score(self, arrays: dict[str, np.ndarray], edges: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        return self.predict(arrays["x"][edges], extra)

    def contributions_many(self, x: np.ndarray, top: int = 8) -> list[list[dict[str, Any]]]:
        """TreeSHAP for many transfers in one pass (the scoring path explains every new flag this way)."""
        if len(x) == 0:
            return []
        rows = self._x(x, None)
        contrib = self.booster.predict(rows, num_iteration=self.best_rounds, pred_contrib=True)
        names = self.booster.feature_name()
        out = []
        for r in range(len(rows)):
            order = np.argsort(-np.abs(contrib[r, :-1]))[:top]
            out.append(
                [
                    {
                        "feature": names[i],
                        "value": round(float(rows[r, i]), 4),
                        "contribution": round(float(contrib[r, i]), 4),
                    }
                    for i in order
                ]
            )
        return out

    def contributions(self, x_row: np.ndarray, extra: np.ndarray | None = None, top: int = 8) -> list[dict[str, Any]]:
        """TreeSHAP: the features that pushed this transfer's score up (or down) the most, in log-odds."""
        contrib = self.booster.predict(
            self._x(x_row[None, :], extra), num_iteration=self.best_rounds, pred_contrib=True
        )[0]
        names = self.booster.feature_name()
        values = self._x(x_row[None, :], extra)[0]
        order = np.argsort(-np.abs(contrib[:-1]))[:top]
        return [
            {"feature": names[i], "value": round(float(values[i]), 4), "contribution": round(float(contrib[i]), 4)}
            for i in order
        ]

    def importance(self, top: int = 15) -> list[tuple[str, float]]:
        gain = self.booster.feature_importance("gain")
        names = self.booster.feature_name()
        order = np.argsort(-gain)[:top]
        return [(names[i], float(gain[i])) for i in order]

    def state(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "params": self.params,
            "model": self.booster.model_to_string(),
            "best_rounds": self.best_rounds,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LightGBMScorer:
        import lightgbm as lgb

        s = cls(view=state["view"])
        s.params = state["params"]
        s.booster = lgb.Booster(model_str=state["model"])
        s.best_rounds = state["best_rounds"]
        return s
