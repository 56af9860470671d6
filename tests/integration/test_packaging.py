"""The built wheel carries the whole package: every module of `curation/` (subpackages
included), the bundled sample and the card template. A wheel that ships only the top-level
package installs a `curation` command that fails on its first import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_every_module_and_the_sample(tmp_path: Path) -> None:
    src = tmp_path / "src"  # build from a copy: setuptools writes build/ beside the sources
    src.mkdir()
    shutil.copytree(ROOT / "curation", src / "curation", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    wheels = list(dist.glob("curation-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "curation").rglob("*.py")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "curation" / "data").iterdir() if p.suffix in (".jsonl", ".md")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "curation" / "templates").iterdir() if p.is_file()}
    assert {"curation/cli/__init__.py", "curation/store/__init__.py"} <= expected
    missing = sorted(expected - names)
    assert not missing, f"the wheel lacks {missing}"
    # labeling_config/ (the LS configs, the guidelines) ships inside the package, and an
    # installed wheel finds it without a source checkout
    shipped = {f"curation/labeling_config/{p.name}" for p in (ROOT / "labeling_config").iterdir()
               if p.suffix in (".xml", ".md")}
    assert {"curation/labeling_config/guidelines.md", "curation/labeling_config/reasoning_knowledge.xml"} <= shipped
    assert shipped <= names, sorted(shipped - names)
    target = tmp_path / "installed"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheels[0])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    probe = ("import curation, curation.labels as L, curation.labelstudio.mapping as M; "
             "print(curation.__file__); print(L.load_guidelines()[0]); print(len(M.load_label_config()) > 0)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CURATION_GUIDELINES", None)
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.split()
    assert lines[0].startswith(str(target)) and lines[1] == "1.0" and lines[2] == "True", res.stdout
