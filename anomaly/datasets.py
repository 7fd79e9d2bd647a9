"""Labelled transfer datasets from a ledger: the graph's arrays, plus labels from simulator ground truth and
from compliance decisions, written as one .npz (and a .json summary) that the ML code reads without Django.

Simulated networks are built in their own database each (a subprocess with its own DATABASE_URL, see
``prepare_simulated``), so a deployment's ledger never holds a simulated event it did not ask for.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def export_dataset(path: Path, *, progress: Any = None, source: str = "deployment") -> dict[str, Any]:
    """Replay this database's ledger and write its transfers (features, graph, labels) to ``path`` (.npz)."""
    from anomaly.graph import shipment_graph
    from anomaly.selectors import compliance_labels

    started = time.monotonic()
    graph = shipment_graph(progress=progress)
    graph.age()
    a = graph.arrays().arrays
    records = graph.replay.records
    ids = a["transfer_id"]
    labels = np.zeros(len(ids), dtype=np.int8)
    scenario = np.array([""] * len(ids), dtype=object)
    camouflaged = np.zeros(len(ids), dtype=np.int8)
    incident = np.array([""] * len(ids), dtype=object)
    lookalike = np.array([""] * len(ids), dtype=object)
    by_event = _simulator_labels()
    tags = _simulator_tags()
    for i, tid in enumerate(ids):
        rec = records[int(tid)]
        for event_id in rec.event_ids:
            hit = by_event.get(event_id)
            if hit is not None and not labels[i]:
                labels[i] = 1
                scenario[i], camouflaged[i], incident[i] = hit
            tag = tags.get(event_id)
            if tag and not lookalike[i]:
                lookalike[i] = tag
    decided = compliance_labels()
    label_source = np.array(["simulator" if labels[i] else "" for i in range(len(ids))], dtype=object)
    for i, tid in enumerate(ids):
        decision = decided.get(int(tid))
        if decision is not None:
            labels[i] = decision
            label_source[i] = "compliance"
            if decision and not scenario[i]:
                scenario[i] = "compliance_suspect"
    hits = np.array(["|".join(records[int(t)].hits) for t in ids], dtype=object)
    meta = {
        "source": source,
        "transfers": len(ids),
        "positives": int(labels.sum()),
        "ledger_seq": int(graph.seq),
        "clock": float(graph.replay.clock),
        "scenarios": sorted({s for s in scenario if s}),
        "labelled_by_simulator": int((label_source == "simulator").sum()),
        "labelled_by_compliance": int((label_source == "compliance").sum()),
        "seconds": round(time.monotonic() - started, 1),
    }
    meta.update(_simulation_meta())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    columns: dict[str, Any] = {
        **a,
        "label": labels,
        "scenario": scenario.astype(str),
        "camouflaged": camouflaged,
        "incident": incident.astype(str),
        "lookalike": lookalike.astype(str),
        "hits": hits.astype(str),
        "label_source": label_source.astype(str),
    }
    np.savez_compressed(tmp, **columns)
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def _simulator_labels() -> dict[str, tuple[str, int, str]]:
    try:
        from simulator.models import ScenarioLabel
    except ImportError:  # a deployment without the simulator app
        return {}
    return {
        e: (s, int(c), i)
        for e, s, c, i in ScenarioLabel.objects.values_list("event_id", "scenario", "camouflaged", "incident")
    }


def _simulator_tags() -> dict[str, str]:
    try:
        from simulator.models import LookalikeTag
    except ImportError:
        return {}
    return dict(LookalikeTag.objects.values_list("event_id", "kind"))


def _simulation_meta() -> dict[str, Any]:
    try:
        from simulator.models import SimulationRun
    except ImportError:
        return {}
    runs = list(SimulationRun.objects.values("run", "seed", "scale"))
    return {"simulation_runs": runs} if runs else {}


def feature_version() -> str:
    """A digest of the code that turns a ledger into features and labels: datasets made by other code are redone."""
    import hashlib

    h = hashlib.sha256()
    for name in ("ml/replay.py", "rules.py", "graph.py", "datasets.py"):
        h.update((ROOT / "anomaly" / name).read_bytes())
    return h.hexdigest()[:12]


def prepare_simulated(
    *, seed: int, scale: str, root: Path, scenarios: str = "all", extra: list[str] | None = None, log: Any = None
) -> Path:
    """A simulated network's dataset: simulated and loaded into a database of its own once, exported again
    whenever the feature code changes. Returns the .npz path.

    Runs `manage.py migrate`, `simulate --load` and `evaluate --export-dataset` in subprocesses with
    DATABASE_URL pointing at ``root/<scale>-<seed>/db.sqlite3``.
    """
    suffix = "" if scenarios == "all" and not extra else "-" + _digest(scenarios, *(extra or []))
    tag = f"{scale}-{seed}{suffix}"
    folder = root / tag
    npz = folder / "dataset.npz"
    version = feature_version()
    stamp = folder / "feature_version"
    if npz.exists() and stamp.exists() and stamp.read_text().strip() == version:
        return npz
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "db.sqlite3"
    loaded = folder / "loaded.ok"
    env = os.environ.copy()
    env["DATABASE_URL"] = f"sqlite:///{db}"
    # Without a broker, capture runs derivation in-process after every document (slow for bulk loads);
    # with one, the kicks wait in a queue no worker reads, and the export derives once at the end.
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    steps = []
    if not loaded.exists():
        for leftover in folder.glob("db.sqlite3*"):
            leftover.unlink()
        steps += [
            [*manage, "migrate", "--noinput", "-v0"],
            [
                *manage,
                "simulate",
                "--seed",
                str(seed),
                "--scale",
                scale,
                "--scenarios",
                scenarios,
                "--load",
                "--quiet",
                *(extra or []),
            ],
        ]
    steps.append([*manage, "evaluate", "--export-dataset", str(npz)])
    for command in steps:
        if log:
            log(f"  [{tag}] {' '.join(command[2:4])} ...")
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[1:])} failed for {tag}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        if command[2] == "simulate":
            loaded.write_text(done.stdout[-2000:])
    stamp.write_text(version + "\n")
    return npz


def _digest(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]
