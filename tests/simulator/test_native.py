"""The compiled simulator (mypyc, simulator/native.py) writes exactly what the Python sources write, and a build
that no longer matches the sources is never used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import native
from tests.simulator.test_determinism import _files

ROOT = Path(__file__).resolve().parents[2]

GENERATE = """
import json, sys
from pathlib import Path
from simulator import native
from simulator.generate import generate
import simulator.engine
generate(seed=int(sys.argv[1]), scale="tiny", out_dir=Path(sys.argv[2]))
print(json.dumps({"using": native.using()[0], "engine": simulator.engine.__file__}))
"""


def _generate(seed: int, out: Path, *, pure: bool) -> dict:
    env = {**os.environ, "SIMULATOR_PURE": "1" if pure else ""}
    done = subprocess.run(
        [sys.executable, "-c", GENERATE, str(seed), str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _require_build() -> None:
    files, why = native.check()
    if files is None:
        if os.environ.get("CI"):  # CI's `make install` builds it: a missing build there is a failed build
            pytest.fail(f"no usable compiled simulator in CI: {why}")
        pytest.skip(why)


@pytest.mark.parametrize("seed", [1, 305])
def test_the_compiled_build_writes_the_same_bytes_as_the_python_sources(seed: int, tmp_path: Path) -> None:
    _require_build()
    compiled = _generate(seed, tmp_path / "compiled", pure=False)
    pure = _generate(seed, tmp_path / "pure", pure=True)
    assert compiled["using"] == "compiled"
    assert compiled["engine"].endswith(".so")
    assert pure["using"] == "python"
    assert pure["engine"].endswith("engine.py")
    a, b = _files(tmp_path / "compiled"), _files(tmp_path / "pure")
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []


def _copy_build(tmp_path: Path) -> Path:
    _require_build()
    copy = tmp_path / "_native"
    shutil.copytree(native.BUILD_DIR, copy)
    return copy


def _edit_stamp(build: Path, **changes: object) -> None:
    stamp = json.loads((build / native.STAMP).read_text())
    stamp.update(changes)
    (build / native.STAMP).write_text(json.dumps(stamp))


def test_a_build_is_used_only_while_every_source_matches(tmp_path: Path) -> None:
    build = _copy_build(tmp_path)
    files, why = native.check(build)
    assert files is not None
    assert set(files) >= {f"simulator.{m}" for m in native.MODULES}
    sources = json.loads((build / native.STAMP).read_text())["sources"]
    _edit_stamp(build, sources={**sources, "engine": "0" * 64})  # as if engine.py had been edited since
    files, why = native.check(build)
    assert files is None
    assert "simulator/engine.py changed since the build" in why


def test_a_build_for_another_interpreter_or_an_incomplete_one_is_not_used(tmp_path: Path) -> None:
    build = _copy_build(tmp_path)
    _edit_stamp(build, abi=".cpython-312-x86_64-linux-gnu.so")
    files, why = native.check(build)
    assert files is None
    assert "rebuild" in why
    build = _copy_build(tmp_path / "again")
    next((build / "simulator").glob("scenarios.*")).unlink()
    files, why = native.check(build)
    assert files is None
    assert "incomplete" in why


def test_without_a_build_the_python_sources_are_used(tmp_path: Path) -> None:
    files, why = native.check(tmp_path / "nothing")
    assert files is None
    assert "no compiled build" in why
    out = _generate(1, tmp_path / "out", pure=True)
    assert out["using"] == "python"
    assert out["engine"].endswith("engine.py")


def test_the_simulators_check_digit_is_the_services() -> None:
    """simulator.ids.check_digit repeats provenance's gs1_check_digit as a loop mypyc compiles: they must agree."""
    import random

    from provenance.epcis.identifiers import gs1_check_digit
    from simulator.ids import check_digit

    rng = random.Random(5)
    for length in (7, 11, 12, 13, 16, 17):
        for _ in range(2000):
            digits = "".join(rng.choice("0123456789") for _ in range(length))
            assert check_digit(digits) == gs1_check_digit(digits), digits
    for bad in ("12a4", "١٢٣", ""):  # both refuse these
        with pytest.raises(ValueError):
            gs1_check_digit(bad)
        with pytest.raises(ValueError):
            check_digit(bad)
