"""Training logic (PyTorch Lightning; no Django): window datasets and the LightningModules of the edge scorer
and the link predictor. One shared ``model_step`` per module; the networks live in nets.py.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset as TorchDataset

from anomaly.ml.nets import EdgeScorer, LinkScorer, to_tensors
from anomaly.ml.temporal import Normalizer, snapshot


class WindowSet(TorchDataset):
    """One item per time window of target transfers, over one or several networks (each with its own graph)."""

    def __init__(
        self,
        items: list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]],
        norm: Normalizer,
        *,
        lookback_days: float,
        negatives: int = 0,
        seed: int = 0,
    ) -> None:
        self.items = items  # (arrays, target edges, labels)
        self.norm = norm
        self.lookback_days = lookback_days
        self.negatives = negatives
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        arrays, targets, labels = self.items[i]
        s = snapshot(arrays, targets, self.norm, lookback_days=self.lookback_days)
        y = labels.astype(np.float32)
        if self.negatives:
            # corrupt the receiver (and the sender): pairs that did not trade this lot at this moment
            n_parties = int(arrays["n_parties"])
            srcs, dsts, lots = [s.tgt_src], [s.tgt_dst], [s.tgt_lot]
            for k in range(self.negatives):
                fake = self.rng.integers(0, n_parties, size=len(targets))
                if k % 2 == 0:
                    srcs.append(s.tgt_src)
                    dsts.append(fake)
                else:
                    srcs.append(fake)
                    dsts.append(s.tgt_dst)
                lots.append(s.tgt_lot)
            s.tgt_src, s.tgt_dst, s.tgt_lot = np.concatenate(srcs), np.concatenate(dsts), np.concatenate(lots)
            s.tgt_attr = np.zeros((len(s.tgt_src), s.tgt_attr.shape[1]), dtype=np.float32)
            y = np.concatenate(
                [np.ones(len(targets), np.float32)] + [np.zeros(len(targets), np.float32)] * self.negatives
            )
        batch = to_tensors(s)
        batch["y"] = torch.as_tensor(y)
        return batch


def first(batch: list[Any]) -> Any:
    return batch[0]


class _Base(L.LightningModule):
    net: torch.nn.Module

    def __init__(self) -> None:
        super().__init__()
        self._val: list[tuple[Tensor, Tensor]] = []

    def model_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self.net(batch)
        weight = torch.tensor(self.hparams["pos_weight"], device=logits.device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["y"], pos_weight=weight)
        return loss, logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self.model_step(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits = self.model_step(batch)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        self._val.append((logits.detach().cpu(), batch["y"].detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        from anomaly.ml.metrics import auprc

        logits = torch.cat([v[0] for v in self._val]).numpy()
        y = torch.cat([v[1] for v in self._val]).numpy()
        self._val.clear()
        value = auprc(y, logits)
        self.log("val_auprc", float(value) if value == value else 0.0, prog_bar=True)

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])


class EdgeClassifier(_Base):
    def __init__(
        self,
        *,
        party_static: int,
        edge_features: int,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        pos_weight: float = 10.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = EdgeScorer(
            party_static=party_static,
            edge_features=edge_features,
            hidden=hidden,
            layers=layers,
            heads=heads,
            dropout=dropout,
        )


class LinkPredictor(_Base):
    def __init__(
        self,
        *,
        party_static: int,
        edge_features: int,
        hidden: int = 48,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        pos_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = LinkScorer(
            party_static=party_static,
            edge_features=edge_features,
            hidden=hidden,
            layers=layers,
            heads=heads,
            dropout=dropout,
        )
