"""The simulator compiled to C with mypyc, used in place of its Python sources when it matches them exactly.

Generating to files is CPU-bound Python: compiled, the same code writes the same bytes about 1.4 times as fast
(docs/simulator.md has the figures). The Python sources stay the reference: a compiled build is used only when
every compiled module's source is byte-for-byte the one it was built from, so an edited source is never shadowed
by a stale build (the build is then ignored, with a warning, until it is rebuilt).

    python -m simulator build     compile into simulator/_native/ (make install does it; needs gcc)
    python -m simulator status    which one `import simulator.engine` gets, and why

``SIMULATOR_PURE=1`` in the environment makes the simulator use its Python sources even when a matching build is
there (the tests compare the two outputs byte for byte). No Django here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
BUILD_DIR = PACKAGE_DIR / "_native"
STAMP = "build.json"
GROUP = "simulator_native"  # the name of the shared library every compiled module loads: simulator_native__mypyc
# What is compiled: everything generate() runs per event. generate.py, report.py and this file stay Python.
MODULES = ("events", "output", "engine", "scenarios", "ids", "network", "geo", "names")


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _abi() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX"))  # e.g. .cpython-311-x86_64-linux-gnu.so


def check(build_dir: Path = BUILD_DIR) -> tuple[dict[str, Path] | None, str]:
    """(module name -> extension file, why) when the build in build_dir matches the sources; (None, why) if not."""
    stamp_path = build_dir / STAMP
    if not stamp_path.exists():
        return None, f"no compiled build in {build_dir} (python -m simulator build)"
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        files = {name: build_dir / rel for name, rel in stamp["files"].items()}
        sources = stamp["sources"]
        abi = stamp["abi"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable {stamp_path}: {exc}"
    if abi != _abi():
        return None, f"the build is for {abi}, this interpreter is {_abi()}: rebuild it"
    stale = [m for m in MODULES if sources.get(m) != source_digest(PACKAGE_DIR / f"{m}.py")]
    if stale:
        return None, f"simulator/{', '.join(m + '.py' for m in stale)} changed since the build: rebuild it"
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing or set(MODULES) - {n.rpartition(".")[2] for n in files}:
        return None, f"the build in {build_dir} is incomplete ({', '.join(missing) or 'modules missing'})"
    return files, f"compiled build in {build_dir}, built {stamp.get('built_with', '?')}"


class _NativeFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled extension of each compiled module (and their shared library) in the build folder."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_state: dict[str, str] = {"using": "python", "why": "not checked"}


def install() -> None:
    """Called by simulator/__init__.py: route the compiled modules' imports to a build that matches the sources."""
    if any(isinstance(f, _NativeFinder) for f in sys.meta_path):
        return
    if os.environ.get("SIMULATOR_PURE", "") not in ("", "0"):
        _state.update(using="python", why="SIMULATOR_PURE is set")
        return
    files, why = check()
    if files is None:
        _state.update(using="python", why=why)
        if (BUILD_DIR / STAMP).exists():  # a build that no longer matches: say so (a missing one is ordinary)
            warnings.warn(f"simulator: using the Python sources, not the compiled build: {why}", stacklevel=2)
        return
    sys.meta_path.insert(0, _NativeFinder(files))
    _state.update(using="compiled", why=why)


def using() -> tuple[str, str]:
    """("compiled" or "python", why) for this process."""
    return _state["using"], _state["why"]


def build(build_dir: Path = BUILD_DIR, opt_level: str = "3") -> dict[str, Path]:
    """Compile MODULES with mypyc into build_dir (replacing what is there); returns module name -> file."""
    # build-time only: setuptools and mypyc (part of mypy) come with the dev dependencies
    from mypyc.build import mypycify
    from setuptools import Distribution

    work = Path(tempfile.mkdtemp(prefix="simulator-native-"))
    cwd = Path.cwd()
    try:
        # mypyc type-checks what it compiles: a bare configuration (the project's mypy section loads Django plugins)
        config = work / "mypy.ini"
        config.write_text("[mypy]\nignore_missing_imports = True\n", encoding="utf-8")
        digests = {m: source_digest(PACKAGE_DIR / f"{m}.py") for m in MODULES}
        os.chdir(ROOT)  # module names come from paths relative to the project root: simulator/engine.py
        extensions = mypycify(
            ["--config-file", str(config), *(f"simulator/{m}.py" for m in MODULES)],
            opt_level=opt_level,
            group_name=GROUP,
            target_dir=str(work / "c"),
        )
        dist = Distribution({"name": "simulator-native", "ext_modules": extensions})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = str(work / "lib")  # type: ignore[attr-defined]
        cmd.build_temp = str(work / "tmp")  # type: ignore[attr-defined]
        dist.run_command("build_ext")
        files: dict[str, str] = {}
        staging = work / "out"
        for so in (work / "lib").rglob("*.so"):
            rel = so.relative_to(work / "lib")
            name = ".".join((*rel.parts[:-1], rel.name.split(".")[0]))
            (staging / rel.parent).mkdir(parents=True, exist_ok=True)
            shutil.copy2(so, staging / rel)
            files[name] = str(rel)
        if set(MODULES) - {n.rpartition(".")[2] for n in files if n.startswith("simulator.")}:
            raise RuntimeError(f"mypyc built {sorted(files)}, not every module of {MODULES}")
        # the sources must not have changed while they were compiled
        if any(source_digest(PACKAGE_DIR / f"{m}.py") != d for m, d in digests.items()):
            raise RuntimeError("a simulator source changed during the build: run it again")
        import mypy.version

        stamp = {
            "abi": _abi(),
            "sources": digests,
            "files": files,
            "built_with": f"mypyc {mypy.version.__version__}, -O{opt_level}",
        }
        (staging / STAMP).write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
        # replace the old build in one step: a process importing meanwhile sees the old one or the new one
        old = build_dir.with_name(build_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if build_dir.exists():
            build_dir.rename(old)
        shutil.move(str(staging), str(build_dir))
        shutil.rmtree(old, ignore_errors=True)
        return {n: build_dir / r for n, r in files.items()}
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the simulator with mypyc into simulator/_native/")
    b.add_argument("--opt-level", default="3", choices=["0", "1", "2", "3"])
    b.add_argument(
        "--if-possible",
        action="store_true",
        help="when the build fails (no C compiler, say), say so and exit 0: the Python sources still work",
    )
    sub.add_parser("status", help="which simulator this interpreter uses, and why")
    args = parser.parse_args(argv)
    if args.command == "status":
        files, why = check()
        pure = os.environ.get("SIMULATOR_PURE", "") not in ("", "0")
        print(
            ("python (SIMULATOR_PURE is set; " + why + ")") if pure and files else ("compiled" if files else "python")
        )
        if not pure or not files:
            print(why)
        return 0
    if check()[0] is not None:
        print("simulator: the compiled build already matches the sources")
        return 0
    try:
        files = build(opt_level=args.opt_level)
    except Exception as exc:
        if not args.if_possible:
            raise
        print(
            f"simulator: not compiled ({type(exc).__name__}: {exc}); the Python sources will be used", file=sys.stderr
        )
        return 0
    print(f"simulator: compiled {len(files)} extension modules into {BUILD_DIR}")
    return 0
