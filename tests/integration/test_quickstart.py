"""The README's demo command, run exactly as written (with the store and exports in tmp).

The demo ends by serving the app; the test waits for its "demo ready" line (or its exit),
checks what it built, then stops it.
"""

from __future__ import annotations

import json
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
    # the loop turns beside the app: a policy is set and a worker was started with it
    from curation.services import loop

    assert loop.loop_status(Store(db))["configured"] and "the loop: a worker beside the app" in output
    assert stats["labels"]["by_label"]["reasoning"] >= 1291
    # the demo's release says what its numbers are: the classifier trained on the MedXpertQA
    # authors' tags, so those rows are in-sample and the tags are a reference, not human labels
    release = tmp_path / "exports" / "v0.1.0-demo"
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    card = (release / "README.md").read_text(encoding="utf-8")
    mxp = next(b for b in manifest["benchmarks"] if b["benchmark"] == "medxpertqa")
    assert mxp["n_in_model_training"] == mxp["n"] == 1700  # every MedXpertQA row was a training label
    assert mxp["n_reference_labeled"] == 1700 and mxp["n_human_labeled"] == 0  # tags are not human labels
    assert manifest["provenance"]["reference_sources"] == [{"name": "medxpertqa_authors", "n_questions": 1700}]
    for column in ("`source_label`", "`source_label_origin`", "`in_model_training`", "**in-sample**"):
        assert column in card
    assert "gold items the model never trained on" in card or "held-out agreement with humans is not available" in card
