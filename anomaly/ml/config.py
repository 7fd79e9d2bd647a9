"""Hyper-parameters of training (no Django). One object, saved in every bundle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TrainConfig:
    # graph models
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_epochs: int = 12
    link_epochs: int = 6
    link_hidden: int = 48
    patience: int = 4
    window_days: float = 1.0
    lookback_days: float = 60.0
    # trees
    lgbm_rounds: int = 500
    iforest_trees: int = 200
    # data and operating point
    val_share: float = 0.25  # the latest share of each training network's period validates (early stop, threshold)
    target_precision: float = 0.90
    max_false_flag_rate: float = 1e-3  # at most 1 false flag per 1,000 clean transfers at the operating threshold
    components: tuple[str, ...] = ("lightgbm_all", "lightgbm_own", "gnn", "iforest", "linkpred")
    # run
    threads: int = 0  # torch/LightGBM threads; 0 = ANOMALY_TORCH_THREADS or all cores (1 on a shared, busy machine)
    seed: int = 0
    accelerator: str = "auto"
    progress: bool = True
    fast_dev_run: bool = False
    extra: dict = field(default_factory=dict)

    def apply_threads(self) -> int:
        """Set torch's thread count; oversubscribed cores make message passing 20x slower, so keep it explicit."""
        import os

        import torch

        n = self.threads or int(os.environ.get("ANOMALY_TORCH_THREADS", "0")) or (os.cpu_count() or 1)
        torch.set_num_threads(n)
        return n

    def as_dict(self) -> dict:
        d = asdict(self)
        d["components"] = list(self.components)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["components"] = tuple(d.get("components", cls.components))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
