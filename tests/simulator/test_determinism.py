from __future__ import annotations

from pathlib import Path

import pytest

from simulator.generate import generate
from tests.simulator.conftest import SEED


def _files(root: Path) -> dict[str, bytes]:
    # speed.json holds the wall-clock speed of the run: the only file allowed to differ
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "speed.json"
    }


def test_the_same_seed_gives_byte_identical_files(tiny_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(seed=SEED, scale="tiny", out_dir=again)
    first, second = _files(tiny_dir), _files(again)
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_a_different_seed_gives_a_different_network() -> None:
    a = generate(seed=SEED, scale="tiny", out_dir=None, days=30, events=1500)
    b = generate(seed=SEED + 1, scale="tiny", out_dir=None, days=30, events=1500)
    assert a.partners != b.partners
    assert a.documents != b.documents


def test_generation_in_memory_matches_generation_to_files(tiny_dir: Path) -> None:
    result = generate(seed=SEED, scale="tiny", out_dir=None)
    files = sorted((tiny_dir / "documents").rglob("*.json"))
    assert [body for _org, body in result.documents] == [f.read_bytes() for f in sorted(files, key=lambda p: p.name)]


@pytest.mark.parametrize("scenarios", ["none", "theft,pill_mill:rate=1:subtlety=0.9:camouflage=1"])
def test_a_run_without_or_with_a_few_scenarios_is_also_deterministic(scenarios: str) -> None:
    a = generate(seed=3, scale="tiny", out_dir=None, scenarios=scenarios, days=30, events=2500)
    b = generate(seed=3, scale="tiny", out_dir=None, scenarios=scenarios, days=30, events=2500)
    assert a.documents == b.documents
    assert a.labels == b.labels
