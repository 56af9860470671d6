"""Train the offline MiniLM encoder on a few hundred bundled labels through the same
functions `curation train` / `curation classify` run; the held-out balanced accuracy must
beat the majority class (0.5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curation import model as M
from curation.cli.model import classify, train_model

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"


def test_minilm_beats_majority_on_held_out(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    y = M.encode_labels([r["label"] for r in rows])
    rest, held = M.stratified_split(y, 0.12, seed=7)  # 204 held out
    train_idx = np.random.default_rng(7).permutation(rest)[:320]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(rows[i]) + "\n" for i in train_idx))
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps({k: rows[i][k] for k in ("id", "question", "options")}) + "\n" for i in held))

    res = train_model(str(tmp_path / "train.jsonl"), "minilm", tmp_path / "model", epochs=1, max_length=128, seed=0, device="auto")
    assert res["kind"] == "transformer" and res["n_labels"] == 320
    assert (tmp_path / "model" / "model.safetensors").exists()
    out = classify(tmp_path / "model", input=tmp_path / "eval.jsonl", output=tmp_path / "pred.jsonl")
    preds = {r["id"]: r for r in map(json.loads, (tmp_path / "pred.jsonl").read_text().splitlines())}
    assert out["n"] == len(held) == len(preds)
    truth = np.array([y[i] for i in held])
    pred = np.array([int(preds[rows[i]["id"]]["is_reasoning"]) for i in held])
    recalls = [np.mean(pred[truth == c] == c) for c in (0, 1)]
    balanced = float(np.mean(recalls))
    assert balanced > 0.5, f"held-out balanced accuracy {balanced:.3f} (recalls {recalls}) does not beat the majority class"
