"""Labelled transfer datasets as arrays (no Django): loading, time splits, feature views.

A dataset is one network's whole ledger replayed: every transfer in creation order (the edge index), with its
features computed from earlier ledger entries only. Splits are masks over the edges; the graph itself is
always the whole network, because scoring a transfer may use everything recorded before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomaly.ml.replay import FEATURES, OWN_FEATURES

GRAPH_KEYS = (
    "transfer_id",
    "src",
    "dst",
    "lot",
    "t_create",
    "seq_create",
    "seq_receive",
    "retracted",
    "n_hits",
    "x",
    "party_static",
    "n_parties",
    "n_lots",
)
LABEL_KEYS = ("label", "scenario", "camouflaged", "incident", "lookalike", "hits", "label_source")


@dataclass
class Dataset:
    name: str
    arrays: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, name: str | None = None) -> Dataset:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        import json

        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(name or path.parent.name, arrays, meta)

    def __len__(self) -> int:
        return len(self.arrays["transfer_id"])

    @property
    def x(self) -> np.ndarray:
        return self.arrays["x"]

    @property
    def y(self) -> np.ndarray:
        return self.arrays["label"].astype(np.int64)

    @property
    def t(self) -> np.ndarray:
        return self.arrays["t_create"]

    def time_cut(self, share: float) -> float:
        t = self.t
        return float(t.min() + share * (t.max() - t.min())) if len(t) else 0.0

    def before(self, share: float) -> np.ndarray:
        return self.t < self.time_cut(share)

    def after(self, share: float) -> np.ndarray:
        return self.t >= self.time_cut(share)


def feature_view(x: np.ndarray, view: str) -> np.ndarray:
    """'own': the transfer's own facts; 'all': own + partner history + neighbour aggregates."""
    if view == "all":
        return x
    if view == "own":
        return x[:, OWN_INDEX]
    raise ValueError(f"unknown feature view {view!r}")


OWN_INDEX = np.array([FEATURES.index(f) for f in OWN_FEATURES])


def feature_names(view: str) -> list[str]:
    return list(FEATURES) if view == "all" else list(OWN_FEATURES)
