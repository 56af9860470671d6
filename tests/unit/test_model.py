"""Unit tests of curation.model with a tiny random BERT built locally and the tfidf baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import modelkit
import numpy as np
import pytest

from curation import model as M
from curation.errors import ConfigError, InputError, NotFoundError
from curation.schema import format_for_model

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _rows(n: int | None = None) -> list[dict]:
    return modelkit.labeled_rows(n or None)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-64 random BERT with a WordPiece tokenizer trained on bundled text."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    fast, bert = modelkit.tiny_bert([format_for_model(r["question"], r["options"]) for r in _rows(200)])
    fast.save_pretrained(folder)
    bert.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str]]:
    rows = _rows(160)
    return [format_for_model(r["question"], r["options"]) for r in rows], [r["label"] for r in rows]


# -- pure pieces ------------------------------------------------------------------------
def test_select_device_both_branches() -> None:
    assert M.select_device("auto", cuda_available=False, cpu_bf16=False) == M.DeviceChoice("cpu", None)
    assert M.select_device("auto", cuda_available=False, cpu_bf16=True) == M.DeviceChoice("cpu", "bfloat16")
    assert M.select_device("cpu", cuda_available=False, cpu_bf16=True) == M.DeviceChoice("cpu", None)
    assert M.select_device("auto", cuda_available=False).device == "cpu"  # the real probe answers
    assert isinstance(M.cpu_has_native_bf16(), bool)
    assert M.select_device("auto", cuda_available=True, bf16_supported=True) == M.DeviceChoice("cuda", "bfloat16")
    assert M.select_device("cuda:1", cuda_available=True, bf16_supported=False) == M.DeviceChoice("cuda:1", None)
    assert M.select_device("cpu", cuda_available=True) == M.DeviceChoice("cpu", None)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        M.select_device("cuda", cuda_available=False)
    with pytest.raises(InputError):
        M.select_device("tpu", cuda_available=False)


def test_autocast_path_runs_on_cpu(tiny_bert: Path) -> None:
    """The GPU branch's bf16 autocast code path, exercised on CPU (CPU autocast supports bf16)."""
    import torch

    tok, mdl = M.load_base(str(tiny_bert))
    info = M.ModelInfo("transformer", "t", str(tiny_bert), 0.5, M.Calibrator().to_dict(), 64)
    amp = M.TransformerClassifier(tok, mdl, info, M.DeviceChoice("cpu", "bfloat16"))
    with M.autocast_context(amp.device):
        assert torch.is_autocast_enabled("cpu")
    z_amp = amp.logits(["a patient with fever", "which vitamin"])
    fp32 = M.TransformerClassifier(tok, mdl, info, M.DeviceChoice("cpu", None))
    z = fp32.logits(["a patient with fever", "which vitamin"])
    assert z_amp.shape == z.shape == (2,)
    assert np.allclose(z_amp, z, atol=0.1)  # bf16 is close but not identical


def test_loaded_for_bf16_inference_casts_weights_and_refuses_to_save(tmp_path: Path, tiny_bert: Path, data: tuple[list[str], list[str]]) -> None:
    import torch

    texts, labels = data
    cfg = M.TrainConfig(base=str(tiny_bert), epochs=1, max_length=64, batch_size=32, seed=0, device="cpu")
    path = M.train(texts[:80], labels[:80], cfg).save(tmp_path / "m")
    fp32 = M.load(path, device="cpu")
    assert isinstance(fp32, M.TransformerClassifier) and not fp32.weights_cast
    bf16 = M.load(path, device=M.DeviceChoice("cpu", "bfloat16"))
    assert isinstance(bf16, M.TransformerClassifier) and bf16.weights_cast
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fp32.model.parameters()} == {torch.float32}
    p32, p16 = fp32.predict_proba(texts[:20]), bf16.predict_proba(texts[:20])
    assert p16.dtype == np.float64 and np.allclose(p16, p32, atol=0.05)
    # the raw logits show the cast (calibration after one epoch may flatten the probabilities to one value)
    z32, z16 = fp32.logits(texts[:20]), bf16.logits(texts[:20])
    assert np.allclose(z16, z32, atol=0.1) and not np.array_equal(z16, z32)
    with pytest.raises(ConfigError, match="load it with device='cpu'"):
        bf16.save(tmp_path / "again")
    assert not (tmp_path / "again").exists()
    fp32.save(tmp_path / "copy")  # the float32 load saves as before


def test_metrics_and_threshold() -> None:
    y = np.array([1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.35, 0.3, 0.2, 0.1])
    t = M.choose_threshold(y, p, "kappa")
    assert 0.3 < t <= 0.35
    m = M.classification_metrics(y, p, t)
    assert m["accuracy"] == 1.0 and m["kappa"] == 1.0 and m["balanced_accuracy"] == 1.0 and m["f1_macro"] == 1.0
    assert M.choose_threshold(np.ones(4), np.linspace(0, 1, 4)) == 0.5  # single class -> 0.5
    assert M.choose_threshold(y, p, "fixed", fixed=0.7) == 0.7
    assert M.expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0
    assert M.expected_calibration_error([0.9, 0.9], [0, 0]) == pytest.approx(0.9)


def test_calibration_reduces_ece() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, 2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(int)  # true slope 0.5, shift -1
    before = M.expected_calibration_error(1 / (1 + np.exp(-z)), y)
    for method in ("platt", "isotonic"):
        cal = M.fit_calibrator(z, y, method)
        after = M.expected_calibration_error(cal(z), y)
        assert after < before / 2, method
        assert M.Calibrator.from_dict(cal.to_dict())(z[:5]) == pytest.approx(cal(z[:5]))
    temp = M.fit_calibrator(z, y, "temperature")
    assert temp.b == 0.0 and 0.3 < temp.a < 0.8
    assert np.all(np.diff(M.fit_calibrator(z, y, "platt")(np.sort(z))) >= 0)  # never flips ranking


def test_stratified_split_is_stratified_and_deterministic() -> None:
    y = np.array([1] * 80 + [0] * 20)
    rest, held = M.stratified_split(y, 0.2, 3)
    assert len(held) == 20 and y[held].sum() == 16
    assert set(rest) | set(held) == set(range(100)) and not set(rest) & set(held)
    assert np.array_equal(held, M.stratified_split(y, 0.2, 3)[1])
    assert not np.array_equal(held, M.stratified_split(y, 0.2, 4)[1])


def test_encode_labels_rejects_unknown() -> None:
    assert M.encode_labels(["reasoning", "knowledge"]).tolist() == [1, 0]
    with pytest.raises(InputError, match="row 2"):
        M.encode_labels(["reasoning", "Reasoning"])


# -- training, save/load, scoring ------------------------------------------------------
def test_tfidf_train_save_load_roundtrip(tmp_path: Path, data: tuple[list[str], list[str]]) -> None:
    texts, labels = data
    clf = M.train(texts, labels, M.TrainConfig(base="tfidf", seed=1))
    assert clf.info.kind == "tfidf" and 0 < clf.threshold < 1
    v = clf.info.metrics["validation"]
    assert {"ece_before_calibration", "ece_after_calibration", "kappa", "balanced_accuracy"} <= v.keys()
    path = clf.save(tmp_path / "m")
    assert not any(p.suffix in (".pkl", ".joblib") for p in path.iterdir())  # no pickle
    meta = json.loads((path / M.MODEL_FILE).read_text())
    assert meta["reasoning_threshold"] == clf.threshold and meta["version"] == clf.version and meta["base"] == "tfidf"
    again = M.load(path)
    p1, p2 = clf.predict_proba(texts[:30]), again.predict_proba(texts[:30])
    assert np.allclose(p1, p2) and np.all((p1 >= 0) & (p1 <= 1))
    assert again.predict_proba([]).shape == (0,)
    assert clf.embed(texts[:10]).shape[0] == 10


def test_tfidf_threshold_from_out_of_fold_logits(data: tuple[list[str], list[str]]) -> None:
    """tfidf trains on every row; calibration and threshold come from 5-fold out-of-fold
    logits (never the rows' own fit); with too few rows of a class, the validation split."""
    texts, labels = data
    y = M.encode_labels(labels)
    cfg = M.TrainConfig(base="tfidf", seed=1)
    z = M.tfidf_oof_logits(texts, y, cfg)
    assert z is not None and z.shape == (len(y),)
    clf = M.train(texts, labels, cfg)
    assert clf.info.metrics["threshold_source"] == "out_of_fold" and clf.fit_rows["validation"] == []
    assert sorted(clf.fit_rows["train"]) == list(range(len(y))) and clf.info.metrics["validation"]["n"] == len(y)
    sign = 2 * y - 1  # out-of-fold logits are less sure of each row's own label than in-sample ones
    assert float(np.mean(sign * z)) < float(np.mean(sign * clf.logits(texts)))
    cal = M.Calibrator.from_dict(clf.info.calibration)
    assert clf.threshold == M.choose_threshold(y, cal(z), "kappa")
    few = [int(i) for i in np.flatnonzero(y == 1)[:4]] + [int(i) for i in np.flatnonzero(y == 0)[:30]]
    assert M.tfidf_oof_logits([texts[i] for i in few], y[few], cfg) is None
    small = M.train([texts[i] for i in few], [labels[i] for i in few], cfg)
    assert small.info.metrics["threshold_source"] == "validation" and small.fit_rows["validation"]
    off = M.train(texts, labels, M.TrainConfig(base="tfidf", seed=1, threshold_folds=0))
    assert off.info.metrics["threshold_source"] == "validation" and len(off.fit_rows["validation"]) == off.info.metrics["n_val"] > 0
    with pytest.raises(InputError, match="threshold_folds"):
        M.TrainConfig(base="tfidf", threshold_folds=1).validate()


def test_tfidf_is_deterministic(data: tuple[list[str], list[str]]) -> None:
    texts, labels = data
    a = M.train(texts, labels, M.TrainConfig(base="tfidf", seed=2)).predict_proba(texts[:20])
    b = M.train(texts, labels, M.TrainConfig(base="tfidf", seed=2)).predict_proba(texts[:20])
    assert np.array_equal(a, b)


def test_train_rejects_single_class_and_tiny(data: tuple[list[str], list[str]]) -> None:
    texts, _ = data
    with pytest.raises(InputError, match="both labels"):
        M.train(texts[:10], ["reasoning"] * 10, M.TrainConfig(base="tfidf"))
    with pytest.raises(InputError, match="at least 4"):
        M.train(texts[:2], ["reasoning", "knowledge"], M.TrainConfig(base="tfidf"))
    with pytest.raises(InputError, match="calibration"):
        M.train(texts, ["reasoning"] * len(texts), M.TrainConfig(base="tfidf", calibration="magic"))


def test_tiny_bert_trains_saves_loads(tmp_path: Path, tiny_bert: Path, data: tuple[list[str], list[str]]) -> None:
    texts, labels = data
    cfg = M.TrainConfig(base=str(tiny_bert), epochs=2, max_length=64, batch_size=16, learning_rate=1e-3, seed=0, device="cpu")
    seen: list[tuple[str, int, int]] = []
    clf = M.train(texts, labels, cfg, progress=lambda s, d, t: seen.append((s, d, t)))
    assert seen and seen[-1][1] == seen[-1][2]
    log = clf.info.metrics["training"]
    assert 1 <= log["best_epoch"] <= 2 and len(log["epochs"]) >= 1
    assert clf.info.metrics["device"] == "cpu/float32"
    path = clf.save(tmp_path / "bert")
    assert (path / "config.json").exists() and (path / M.MODEL_FILE).exists()
    assert any(p.name.startswith("tokenizer") for p in path.iterdir())
    again = M.load(path, device="cpu")
    assert again.version == clf.version and again.threshold == clf.threshold
    p1 = clf.predict_proba(texts[:40], batch_size=7)
    p2 = again.predict_proba(texts[:40], batch_size=64)
    assert np.allclose(p1, p2, atol=1e-5)  # batching / padding does not change scores
    # order independence of length-sorted batches
    perm = np.random.default_rng(0).permutation(40)
    assert np.allclose(again.predict_proba([texts[i] for i in perm]), p2[perm], atol=1e-5)
    emb = again.embed(texts[:5])
    assert emb.shape == (5, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)


def test_tiny_bert_seed_is_reproducible(tiny_bert: Path, data: tuple[list[str], list[str]]) -> None:
    texts, labels = data
    cfg = M.TrainConfig(base=str(tiny_bert), epochs=1, max_length=32, batch_size=32, seed=5, device="cpu")
    a = M.train(texts[:80], labels[:80], cfg).logits(texts[:10])
    b = M.train(texts[:80], labels[:80], cfg).logits(texts[:10])
    assert np.allclose(a, b, atol=1e-6)


def test_early_stopping_keeps_best_epoch(tiny_bert: Path, data: tuple[list[str], list[str]]) -> None:
    texts, labels = data
    # a huge learning rate makes validation loss blow up after the first epoch
    cfg = M.TrainConfig(base=str(tiny_bert), epochs=3, patience=1, max_length=32, batch_size=16,
                        learning_rate=0.5, warmup_ratio=0.0, seed=0, device="cpu")
    log = M.train(texts[:100], labels[:100], cfg).info.metrics["training"]
    losses = [e["val_loss"] for e in log["epochs"]]
    assert log["best_epoch"] == 1 + int(np.argmin(losses))
    if len(losses) < 3:
        assert log["stopped_early"]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="curation train"):
        M.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a curation model folder"):
        M.load(tmp_path / "empty")
    with pytest.raises(InputError, match="config.json"):
        M.load_base(str(tmp_path / "empty"))


def test_minilm_resolves_to_bundled_folder() -> None:
    path = Path(M.resolve_base("minilm"))
    assert (path / "config.json").exists()
    assert M.resolve_base("tfidf") == "tfidf"


def test_default_base_offline_error_names_minilm(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    code = (
        "from curation import model as M\n"
        "from curation.errors import ConfigError\n"
        "try:\n    M.load_base(M.DEFAULT_BASE)\nexcept ConfigError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("ERR"), out.stderr[-2000:]
    assert "--model minilm" in out.stdout and "HF_HUB_OFFLINE" in out.stdout and M.DEFAULT_BASE in out.stdout


def test_cli_train_default_model_offline_says_use_minilm(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    labels = tmp_path / "l.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in _rows(12)))
    out = subprocess.run(
        [sys.executable, "-c", "from curation.cli import main; main()", "train", "--labels", str(labels), "--out", str(tmp_path / "m")],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert out.returncode == 1, out.stdout + out.stderr[-2000:]
    assert "--model minilm" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "m").exists()


# -- truncation: head | head_tail ---------------------------------------------------------
def _long_text() -> tuple[str, str]:
    """A real long stem (made longer) with ten options; returns (input text, last option's text)."""
    row = max(_rows(200), key=lambda r: len(r["question"]))
    options = dict(row["options"])
    last = sorted(options)[-1]
    return format_for_model(row["question"] + "\n\n" + row["question"], options), options[last]


def _contains(seq: list[int], part: list[int]) -> bool:
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def test_head_tail_split() -> None:
    assert M.head_tail_split(254) == (64, 190)
    assert M.head_tail_split(510) == (64, 446)
    assert M.head_tail_split(30) == (15, 15)
    assert M.head_tail_split(0) == (0, 0)


def test_head_tail_keeps_the_last_option_and_head_does_not(tiny_bert: Path) -> None:
    tok, mdl = M.load_base(str(tiny_bert))
    text, last_option = _long_text()
    want = tok(last_option, add_special_tokens=False)["input_ids"]
    full = tok(text)["input_ids"]
    assert len(full) > 200 and _contains(full, want)
    head, tail = (M.tokenize(tok, [text], 64, mode)[0] for mode in ("head", "head_tail"))
    assert len(head) == len(tail) == 64
    assert head == tok([text], truncation=True, max_length=64)["input_ids"][0]  # head: as before
    assert not _contains(head, want) and _contains(tail, want)
    cls, sep = full[0], full[-1]
    assert tail[0] == cls and tail[-1] == sep and tail[1:32] == full[1:32] and tail[32:-1] == full[-32:-1]
    short = "a patient with fever"
    assert M.tokenize(tok, [short], 64, "head") == M.tokenize(tok, [short], 64, "head_tail")  # short: uncut
    # scoring and frozen embeddings apply the mode: the long text changes, the short one does not
    info = M.ModelInfo("transformer", "t", str(tiny_bert), 0.5, M.Calibrator().to_dict(), 64)
    clf = M.TransformerClassifier(tok, mdl, info, M.DeviceChoice("cpu", None))
    z_head = clf.logits([text, short])
    clf.info.truncation = "head_tail"
    assert clf.encode([text])[0] == tail
    z_tail = clf.logits([text, short])
    assert z_head[1] == pytest.approx(z_tail[1], abs=1e-6) and abs(z_head[0] - z_tail[0]) > 1e-6
    e_head, e_tail = (M.frozen_embeddings(str(tiny_bert), [text], max_length=64, device="cpu", truncation=m) for m in ("head", "head_tail"))
    assert not np.allclose(e_head, e_tail)
    with pytest.raises(InputError, match="truncation 'tail'"):
        M.tokenize(tok, [text], 64, "tail")


def test_head_tail_model_round_trip_and_old_models_load_as_head(tmp_path: Path, tiny_bert: Path, data: tuple[list[str], list[str]]) -> None:
    texts, labels = data
    text, _ = _long_text()
    cfg = M.TrainConfig(base=str(tiny_bert), epochs=1, max_length=64, batch_size=32, seed=0, device="cpu", truncation="head_tail")
    clf = M.train(texts[:80], labels[:80], cfg)
    assert clf.info.truncation == "head_tail" and clf.info.config["truncation"] == "head_tail"
    path = clf.save(tmp_path / "m")
    meta = json.loads((path / M.MODEL_FILE).read_text())
    assert meta["truncation"] == "head_tail"
    again = M.load(path, device="cpu")
    assert again.info.truncation == "head_tail"
    assert np.allclose(again.logits([text]), clf.logits([text]), atol=1e-5)
    # a model folder written before the mode was recorded loads as head
    del meta["truncation"]
    (path / M.MODEL_FILE).write_text(json.dumps(meta))
    old = M.load(path, device="cpu")
    assert old.info.truncation == "head"
    assert isinstance(old, M.TransformerClassifier) and old.encode([text]) == M.tokenize(old.tokenizer, [text], 64, "head")
    meta["truncation"] = "middle"
    (path / M.MODEL_FILE).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="truncation 'middle'"):
        M.load(path, device="cpu")
    with pytest.raises(InputError, match="truncation 'tail' is not one of head, head_tail"):
        M.TrainConfig(truncation="tail").validate()


# -- the CPU bf16 probe ---------------------------------------------------------------------
def test_prefer_bf16_decision() -> None:
    assert M.prefer_bf16(0.0100, 0.0040)  # 2.5x: the AMD EPYC with avx512_bf16
    assert M.prefer_bf16(1.3, 1.0)  # exactly the bar
    assert not M.prefer_bf16(1.25, 1.0)  # faster, but not clearly
    assert not M.prefer_bf16(0.004, 0.010)  # bf16 emulated: slower
    assert not M.prefer_bf16(0.0, 0.001) and not M.prefer_bf16(0.001, 0.0) and not M.prefer_bf16(float("nan"), 0.001)
    assert M.prefer_bf16(1.1, 1.0, min_speedup=1.05)


def test_cpu_bf16_probe_caches_per_process_and_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from curation import devices

    if M.cpu_has_native_bf16():
        pytest.skip("AMX: bf16 without timing")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(devices, "_PROBE_ANSWER", {})
    answer = M.cpu_bf16_probe()
    cache = tmp_path / "curation" / "cpu_bf16_probe.json"
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["bf16"] is answer and entry["fp32_seconds"] > 0 and entry["bf16_seconds"] > 0
    assert answer is M.prefer_bf16(entry["fp32_seconds"], entry["bf16_seconds"])
    assert M.select_device("auto", cuda_available=False) == M.DeviceChoice("cpu", "bfloat16" if answer else None)
    # a new process reads the disk answer instead of timing again (here: the opposite one, written by hand)
    key = next(iter(json.loads(cache.read_text())))
    cache.write_text(json.dumps({key: {**entry, "bf16": not answer}}))
    monkeypatch.setattr(devices, "_PROBE_ANSWER", {})
    assert M.cpu_bf16_probe() is (not answer)
    assert M.cpu_bf16_probe(use_disk_cache=False) is (not answer)  # the process keeps its answer
    cache.write_text("{not json")  # a broken cache is probed again and rewritten
    monkeypatch.setattr(devices, "_PROBE_ANSWER", {})
    assert isinstance(M.cpu_bf16_probe(), bool) and json.loads(cache.read_text())
