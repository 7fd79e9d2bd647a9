"""Labelled transfer datasets from a ledger: the graph's arrays, plus labels from simulator ground truth and
from compliance decisions, written as one .npz (and a .json summary) that the ML code reads without Django.

Simulated networks are built in their own database each (a subprocess with its own DATABASE_URL, see
``prepare_simulated``), so a deployment's ledger never holds a simulated event it did not ask for.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
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


def simulator_code_version() -> str:
    """A digest of the simulator's generator (its Python code and geography data): cheap to compute, so it is
    checked on every call; when it changes, the generated output decides whether a cached network is stale."""
    import hashlib

    h = hashlib.sha256()
    base = ROOT / "simulator"
    files = sorted(p for p in base.rglob("*") if p.is_file() and (p.suffix == ".py" or p.parent.name == "data"))
    for path in files:
        if "migrations" in path.parts or "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(base)).encode() + b"\x00")
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def simulator_output_version(out: Path) -> str:
    """A digest of what the simulator wrote to ``out`` (documents, master data, labels, look-alikes, manifest;
    not speed.json, the one file that differs between identical runs)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "speed.json"):
        h.update(str(path.relative_to(out)).encode() + b"\x00")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def derivation_version() -> str:
    """A digest of the code that derives transfers from the ledger and of the schema they are stored in."""
    import hashlib

    h = hashlib.sha256()
    base = ROOT / "provenance"
    for path in [base / "derive.py", base / "models.py", *sorted((base / "migrations").glob("0*.py"))]:
        if path.exists():
            h.update(path.name.encode() + b"\x00" + path.read_bytes())
    return h.hexdigest()[:12]


def prepare_simulated(
    *, seed: int, scale: str, root: Path, scenarios: str = "all", extra: list[str] | None = None, log: Any = None
) -> Path:
    """A simulated network's dataset, cached in ``root/<scale>-<seed>[-<options digest>]/``. Returns the .npz path.

    Three layers, each redone only when its code changed:
    - ``ledger.sqlite3``: the network simulated and loaded through the capture path (`simulate --load`, the slow
      part, derivation deferred). ``simulator_version`` records the simulator's code and output digests: when the
      simulator's code changes, the network is generated again in memory (about a second) and kept only if the
      output is byte-identical, else simulated and loaded again.
    - ``db.sqlite3``: a copy of it, migrated, with transfers derived (`derivation_version`); redone from the
      ledger copy when provenance's derivation code or schema changes.
    - ``dataset.npz``: the replayed features and labels (`feature_version`).
    """
    suffix = "" if scenarios == "all" and not extra else "-" + _digest(scenarios, *(extra or []))
    tag = f"{scale}-{seed}{suffix}"
    folder = root / tag
    npz = folder / "dataset.npz"
    env = os.environ.copy()
    # Without a broker, capture runs derivation in-process after every document (slow for bulk loads);
    # with one, the kicks wait in a queue no worker reads, and the export derives once at the end.
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env["ANOMALY_SCORE_ON_CAPTURE"] = "false"  # a training network is exported, never scored
    manage = [sys.executable, str(ROOT / "manage.py")]
    simulate = [
        *manage,
        "simulate",
        "--seed",
        str(seed),
        "--scale",
        scale,
        "--scenarios",
        scenarios,
        "--quiet",
        *(extra or []),
    ]
    if not _loaded_network_is_current(folder, simulate, env, tag, log):
        _load_network(folder, simulate, manage, env, tag, log)
    derived = folder / "derivation_version"
    features = folder / "feature_version"
    derive_now, features_now = derivation_version(), feature_version()
    if _read(derived) == derive_now and _read(features) == features_now and npz.exists():
        return npz
    db = folder / "db.sqlite3"
    if _read(derived) != derive_now or not db.exists():
        derived.unlink(missing_ok=True)
        features.unlink(missing_ok=True)
        for old in folder.glob("db.sqlite3*"):
            old.unlink()
        shutil.copyfile(folder / LEDGER_DB, db)
    env["DATABASE_URL"] = f"sqlite:///{db}"
    _run([*manage, "migrate", "--noinput", "-v0"], env, tag, log, check=True)
    _run([*manage, "evaluate", "--export-dataset", str(npz)], env, tag, log, check=True)
    derived.write_text(derive_now + "\n")
    features.write_text(features_now + "\n")
    return npz


SIMULATOR_STAMP = "simulator_version"
LEDGER_DB = "ledger.sqlite3"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""


def _loaded_network_is_current(folder: Path, simulate: list[str], env: dict[str, str], tag: str, log: Any) -> bool:
    import tempfile

    stamp_path = folder / SIMULATOR_STAMP
    if not (folder / LEDGER_DB).exists() or not stamp_path.exists():
        return False  # never loaded, interrupted, or loaded before the simulator was versioned
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    code = simulator_code_version()
    if stamp.get("code") == code:
        return True
    with tempfile.TemporaryDirectory(prefix="simulate-check-") as tmp:
        _run([*simulate, "--out", tmp], env, tag, log, check=True)
        output = simulator_output_version(Path(tmp))
    if output != stamp.get("output"):
        if log:
            log(f"  [{tag}] the simulator's output changed: the network is simulated and loaded again")
        return False
    stamp_path.write_text(json.dumps({**stamp, "code": code}) + "\n", encoding="utf-8")
    return True


def _load_network(
    folder: Path, simulate: list[str], manage: list[str], env: dict[str, str], tag: str, log: Any
) -> None:
    if folder.exists():
        shutil.rmtree(folder)  # whatever was there came from other simulator code (or an interrupted load)
    folder.mkdir(parents=True)
    code = simulator_code_version()
    out = folder / "simulated"
    loading = folder / "loading.sqlite3"
    env = {**env, "DATABASE_URL": f"sqlite:///{loading}"}
    _run([*manage, "migrate", "--noinput", "-v0"], env, tag, log, check=True)
    _run([*simulate, "--out", str(out), "--load"], env, tag, log, check=True)
    output = simulator_output_version(out)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(loading, folder / LEDGER_DB)
    (folder / SIMULATOR_STAMP).write_text(json.dumps({"code": code, "output": output}) + "\n", encoding="utf-8")


def _run(command: list[str], env: dict[str, str], tag: str, log: Any, *, check: bool) -> bool:
    if log:
        log(f"  [{tag}] {' '.join(command[2:4])} ...")
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return True
    if check:
        raise RuntimeError(f"{' '.join(command[1:])} failed for {tag}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return False


def _digest(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]
