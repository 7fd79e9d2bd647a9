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


def test_uncached_distance_is_the_cached_one_to_the_bit_in_either_order() -> None:
    """Scenario scans over thousands of dispensers use Network.km, which keeps nothing; the transit legs use
    Network.distance, which keeps each pair under (smaller, larger) from whichever order asked first. The
    output stays the same only if the two agree exactly, whatever the order."""
    from simulator.geo import load_geography
    from simulator.network import SCALES, build_network

    net = build_network(SEED, SCALES["tiny"], load_geography())
    n = len(net.locs)
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    assert len(pairs) > 1000
    kept = len(net._dist)
    uncached = {(a, b): net.km(a, b) for a, b in pairs}
    assert len(net._dist) == kept  # km keeps nothing
    net._dist.clear()
    assert uncached == {(a, b): net.distance(a, b) for a, b in pairs}  # (b, a) is then read from (a, b)'s entry
    assert len(net._dist) == len(pairs) // 2
    assert all(uncached[(a, b)] == uncached[(b, a)] for a, b in pairs)
