"""The layers hold (import-linter contracts in pyproject.toml) and a deliberate violation
breaks them; no module or function outgrows what a newcomer can read."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600
REASON = "# long:"  # a comment on the line above a longer function says why


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_contracts_hold() -> None:
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("curation/rules.py", "import duckdb  # deliberate", "The core is pure"),
        ("curation/store/sql.py", "from curation.services import learn  # deliberate", "Layers"),
        ("ui/common.py", "from curation.cli import app  # deliberate", "never import the command line"),
        ("ui/pages/progress.py", "from curation.store import queue  # deliberate", "never a store module"),
    ],
)
def test_a_deliberate_violation_breaks_them(tmp_path: Path, module: str, line: str, contract: str) -> None:
    for folder in ("curation", "ui"):
        shutil.copytree(ROOT / folder, tmp_path / folder, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "labeling_config"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / module).open("a", encoding="utf-8") as fh:
        fh.write("\n" + line + "\n")
    res = _lint(tmp_path)
    assert res.returncode != 0
    broken = res.stdout[res.stdout.index("Broken contracts"):]
    assert contract in broken, broken[-3000:]


def _sources() -> list[Path]:
    return sorted(p for d in ("curation", "ui") for p in (ROOT / d).rglob("*.py") if "labeling_config" not in p.parts)


def test_no_module_over_the_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_the_limit_without_a_reason() -> None:
    long = []
    for p in _sources():
        text = p.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                above = lines[first - 2].strip() if first >= 2 else ""
                if n > MAX_FUNCTION_LINES and not above.startswith(REASON):
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines without a '{REASON}' comment: {long}"
