"""Networks (torch + torch_geometric; no Django, no Lightning): a heterogeneous, edge-feature-aware,
time-encoded graph encoder over partners and lots, an edge classifier head and a link-prediction head.

Inductive: nodes have no identity embeddings, only features, so a network never seen in training (a new
deployment, a new partner) is scored from its neighbourhood without retraining.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import HeteroConv, TransformerConv

from anomaly.ml.temporal import LOT_DIM, PARTY_DIM_EXTRA, TIME_DIM, Snapshot

SHIPS = ("party", "ships", "party")
SHIPPED_BY = ("party", "rev_ships", "party")
HOLDS = ("party", "holds", "lot")
HELD_BY = ("lot", "held_by", "party")


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class ShipmentEncoder(nn.Module):
    """Partner and lot embeddings from the earlier transfers around them (2 hops by default)."""

    def __init__(
        self,
        *,
        party_static: int,
        edge_features: int,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.party_in = nn.Linear(party_static + PARTY_DIM_EXTRA, hidden)
        self.lot_in = nn.Linear(LOT_DIM, hidden)
        self.edge_in = mlp([edge_features + TIME_DIM, hidden, hidden])
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(layers):
            conv = {
                etype: TransformerConv(
                    hidden, hidden // heads, heads=heads, edge_dim=hidden, dropout=dropout, root_weight=True
                )
                for etype in (SHIPS, SHIPPED_BY, HOLDS, HELD_BY)
            }
            self.convs.append(HeteroConv(conv, aggr="sum"))
            self.norms.append(nn.ModuleDict({"party": nn.LayerNorm(hidden), "lot": nn.LayerNorm(hidden)}))
        self.dropout = nn.Dropout(dropout)

    def forward(self, g: dict[str, Tensor]) -> dict[str, Tensor]:
        h = {"party": self.party_in(g["party_x"]), "lot": self.lot_in(g["lot_x"])}
        e = self.edge_in(g["msg_attr"])
        src, dst, lot = g["msg_src"], g["msg_dst"], g["msg_lot"]
        edge_index = {
            SHIPS: torch.stack([src, dst]),
            SHIPPED_BY: torch.stack([dst, src]),
            HOLDS: torch.stack([torch.cat([src, dst]), torch.cat([lot, lot])]),
            HELD_BY: torch.stack([torch.cat([lot, lot]), torch.cat([src, dst])]),
        }
        edge_attr = {SHIPS: e, SHIPPED_BY: e, HOLDS: torch.cat([e, e]), HELD_BY: torch.cat([e, e])}
        for conv, norm in zip(self.convs, self.norms, strict=True):
            out = conv(h, edge_index, edge_attr_dict=edge_attr)
            h = {k: norm[k](h[k] + self.dropout(torch.relu(out[k]))) if k in out else h[k] for k in h}  # type: ignore[index]
        return h


class EdgeScorer(nn.Module):
    """Supervised: the logit that a transfer is counterfeit/diverted, from its endpoints, its lot and itself."""

    def __init__(
        self,
        *,
        party_static: int,
        edge_features: int,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = ShipmentEncoder(
            party_static=party_static,
            edge_features=edge_features,
            hidden=hidden,
            layers=layers,
            heads=heads,
            dropout=dropout,
        )
        self.target_in = mlp([edge_features, hidden, hidden])
        self.head = mlp([4 * hidden, hidden, 1], dropout=dropout)

    def forward(self, g: dict[str, Tensor]) -> Tensor:
        h = self.encoder(g)
        z = torch.cat(
            [h["party"][g["tgt_src"]], h["party"][g["tgt_dst"]], h["lot"][g["tgt_lot"]], self.target_in(g["tgt_attr"])],
            dim=-1,
        )
        return self.head(z).squeeze(-1)


class LinkScorer(nn.Module):
    """Label-free: the logit that this sender ships this lot to this receiver, given the history before it."""

    def __init__(
        self,
        *,
        party_static: int,
        edge_features: int,
        hidden: int = 48,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = ShipmentEncoder(
            party_static=party_static,
            edge_features=edge_features,
            hidden=hidden,
            layers=layers,
            heads=heads,
            dropout=dropout,
        )
        self.head = mlp([3 * hidden, hidden, 1], dropout=dropout)

    def pair_logits(self, h: dict[str, Tensor], src: Tensor, dst: Tensor, lot: Tensor) -> Tensor:
        return self.head(torch.cat([h["party"][src], h["party"][dst], h["lot"][lot]], dim=-1)).squeeze(-1)

    def forward(self, g: dict[str, Tensor]) -> Tensor:
        return self.pair_logits(self.encoder(g), g["tgt_src"], g["tgt_dst"], g["tgt_lot"])


def to_tensors(s: Snapshot, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    def f(a):
        return torch.as_tensor(a, dtype=torch.float32, device=device)

    def i(a):
        return torch.as_tensor(a, dtype=torch.long, device=device)

    return {
        "party_x": f(s.party_x),
        "lot_x": f(s.lot_x),
        "msg_src": i(s.msg_src),
        "msg_dst": i(s.msg_dst),
        "msg_lot": i(s.msg_lot),
        "msg_attr": f(s.msg_attr),
        "tgt_src": i(s.tgt_src),
        "tgt_dst": i(s.tgt_dst),
        "tgt_lot": i(s.tgt_lot),
        "tgt_attr": f(s.tgt_attr),
    }
