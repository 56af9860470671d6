"""The README's demo command, run exactly as written (with the store and exports in tmp).

The demo ends by serving the app; the test waits for its "demo ready" line (or its exit),
checks what it built, then stops it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from curation.store import Store
from curation.store import questions as qstore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- {marker} -->\s*```\s*\n(.*?)\n```\s*<!-- /{marker} -->", text, re.S)
    assert m, f"README has no {marker} block"
    return m.group(1).strip()


def test_readme_starts_with_exactly_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.index("```")
    blocks_before_prose = re.findall(r"```\s*\n(.*?)\n```", text[: text.index("## ")], re.S)
    assert len(blocks_before_prose) == 2 and first_block < text.index("The first command")
    assert readme_command("demo-command").startswith("scripts/setup.sh")
    assert readme_command("test-command").startswith("scripts/setup.sh --dev")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_command_as_written(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    env = {**os.environ, "CURATION_DB": str(db), "CURATION_EXPORTS": str(tmp_path / "exports"),
           "CURATION_DEMO_PORT": str(_free_port()), "CURATION_DEMO_DIR": str(tmp_path)}
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", "-c", readme_command("demo-command")], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 900
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None or "demo ready" in log.read_text(errors="replace"):
                    break
                time.sleep(1)
            output = log.read_text(errors="replace")
            assert proc.poll() in (None, 0), output[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    stats = Store(db).run(qstore.stats)
    assert stats["questions"] == 7358, output[-3000:]
    assert stats["labels"]["by_label"]["reasoning"] >= 1291
