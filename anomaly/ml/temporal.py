"""Time-respecting snapshots of the shipment graph for the graph models (numpy in, torch out; no Django).

A target transfer only ever sees transfers created before its window's cutoff (their receipt features only if
the receipt came before the cutoff), within a lookback; a window groups targets created within a day or so.
Training, evaluation and serving build snapshots the same way, so what a model learned is what it is asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.ml.replay import N_CREATE, N_RECEIPT, RULE_FEATURES

TIME_FREQS = np.array([1.0 / (2.0**k) for k in range(-1, 7)], dtype=np.float32)  # periods from 0.5 to 64 days
TIME_DIM = len(TIME_FREQS)


@dataclass
class Normalizer:
    """Standardises features with statistics of the training transfers (clipped: heavy tails are common)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Normalizer:
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std[std < 1e-6] = 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / self.std, -8.0, 8.0).astype(np.float32)

    def state(self) -> dict:
        return {"mean": self.mean, "std": self.std}


def windows(arrays: dict[str, np.ndarray], edges: np.ndarray, days: float = 1.0) -> list[np.ndarray]:
    """Group target edges into windows of ``days`` by creation time; each window's cutoff is its first edge."""
    if len(edges) == 0:
        return []
    t = arrays["t_create"][edges]
    order = np.argsort(t, kind="stable")
    edges, t = edges[order], t[order]
    bucket = np.floor((t - t[0]) / days).astype(np.int64)
    cuts = np.flatnonzero(np.diff(bucket)) + 1
    return np.split(edges, cuts)


@dataclass
class Snapshot:
    """One window: the message graph (earlier transfers) and the target transfers, as numpy arrays."""

    party_x: np.ndarray
    lot_x: np.ndarray
    msg_src: np.ndarray
    msg_dst: np.ndarray
    msg_lot: np.ndarray
    msg_attr: np.ndarray
    msg_edges: np.ndarray  # edge ids of the message edges (for explanations)
    targets: np.ndarray  # edge ids of the targets
    tgt_src: np.ndarray
    tgt_dst: np.ndarray
    tgt_lot: np.ndarray
    tgt_attr: np.ndarray


def snapshot(
    arrays: dict[str, np.ndarray],
    targets: np.ndarray,
    norm: Normalizer,
    *,
    lookback_days: float = 60.0,
    max_msg_edges: int = 200_000,
) -> Snapshot:
    seq = arrays["seq_create"]
    t = arrays["t_create"]
    first = int(targets[np.argmin(seq[targets])])
    cutoff_seq, cutoff_t = seq[first], t[first]
    # Edges are stored in creation order, so "created before the cutoff" is a prefix of the edge index.
    end = int(np.searchsorted(seq, cutoff_seq, side="left"))
    start = int(np.searchsorted(t[:end], cutoff_t - lookback_days, side="left")) if end else 0
    start = max(start, end - max_msg_edges)
    msg = np.arange(start, end)
    if "retracted" in arrays and len(msg):
        msg = msg[~arrays["retracted"][msg]]
    x = arrays["x"]
    attr = norm(x[msg]) if len(msg) else np.zeros((0, x.shape[1]), dtype=np.float32)
    if len(msg):
        # a receipt recorded after the cutoff is not known yet
        late = arrays["seq_receive"][msg]
        unknown = (late < 0) | (late >= cutoff_seq)
        attr[unknown, N_CREATE : N_CREATE + N_RECEIPT] = 0.0
        # rule hits as they stand now may come from that receipt, or from later news (packs surfacing elsewhere)
        attr[unknown, x.shape[1] - len(RULE_FEATURES) :] = 0.0
    age = (cutoff_t - t[msg]).astype(np.float32)
    time_enc = np.cos(age[:, None] * TIME_FREQS[None, :]) if len(msg) else np.zeros((0, TIME_DIM), np.float32)
    msg_attr = np.hstack([attr, time_enc.astype(np.float32)])
    n_parties = int(arrays["n_parties"])
    n_lots = int(arrays["n_lots"])
    src, dst, lot = arrays["src"][msg], arrays["dst"][msg], arrays["lot"][msg]
    out_deg = np.bincount(src, minlength=n_parties)
    in_deg = np.bincount(dst, minlength=n_parties)
    party_x = np.hstack([arrays["party_static"], np.log1p(out_deg)[:, None], np.log1p(in_deg)[:, None]]).astype(
        np.float32
    )
    lot_deg = np.bincount(lot, minlength=n_lots)
    lot_x = np.stack([np.ones(n_lots), np.log1p(lot_deg), (lot_deg == 0).astype(float)], axis=1).astype(np.float32)
    return Snapshot(
        party_x=party_x,
        lot_x=lot_x,
        msg_src=src,
        msg_dst=dst,
        msg_lot=lot,
        msg_attr=msg_attr,
        msg_edges=msg,
        targets=targets,
        tgt_src=arrays["src"][targets],
        tgt_dst=arrays["dst"][targets],
        tgt_lot=arrays["lot"][targets],
        tgt_attr=norm(x[targets]),
    )


PARTY_DIM_EXTRA = 2  # out and in degree
LOT_DIM = 3
