"""The classifier's torch-free half: training configuration, label encoding, the stratified
split, the `Classifier` interface with its saved metadata (`ModelInfo`), and the TF-IDF +
logistic regression baseline (scikit-learn).

`curation.model` holds the transformer side (the only code that imports torch and
transformers), `train`, `evaluate` and `load`, and re-exports every name here; its docstring
describes both kinds of model and the saved folder.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from curation.calibration import CALIBRATIONS, THRESHOLD_RULES, Calibrator
from curation.errors import InputError

__all__ = [
    "DEFAULT_BASE",
    "FORMAT_VERSION",
    "LABEL_NAMES",
    "MODEL_FILE",
    "TRUNCATIONS",
    "Classifier",
    "ModelInfo",
    "Progress",
    "TfidfClassifier",
    "TrainConfig",
    "encode_labels",
    "new_version",
    "stratified_split",
    "tfidf_oof_logits",
    "train_tfidf",
]

DEFAULT_BASE = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"
MODEL_FILE = "curation_model.json"
FORMAT_VERSION = 1
LABEL_NAMES: tuple[str, str] = ("knowledge", "reasoning")  # index 1 = reasoning (positive class)
# how a text longer than max_length tokens is cut: keep its head, or its head and its tail
# (the question's ask and the options); see curation.model.tokenize
TRUNCATIONS: tuple[str, str] = ("head", "head_tail")

Progress = Callable[[str, int, int], None]


def _noop_progress(stage: str, done: int, total: int) -> None:
    return None


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all have defaults that work on CPU)."""

    base: str = DEFAULT_BASE
    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
    truncation: str = "head"  # one of TRUNCATIONS
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    val_fraction: float = 0.15
    patience: int = 1
    seed: int = 0
    device: str = "auto"
    threshold_rule: str = "kappa"
    fixed_threshold: float = 0.5
    calibration: str = "platt"
    # tfidf baseline
    # tfidf: calibration and threshold on out-of-fold logits over every training row with
    # this many folds, then the model refit on all rows (measured better than one 15 %
    # split: benchmarks/classifier_quality.py); 0 or too few rows per class -> the split.
    # Encoders always use the validation split (k fine-tunes would cost k times).
    threshold_folds: int = 5
    tfidf_c: float = 4.0
    tfidf_max_features: int = 50_000

    def validate(self) -> None:
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 8 <= self.max_length <= 4096:
            raise InputError(f"max_length must be between 8 and 4096, got {self.max_length}")
        if self.truncation not in TRUNCATIONS:
            raise InputError(f"truncation {self.truncation!r} is not one of {', '.join(TRUNCATIONS)}")
        if not 0.05 <= self.val_fraction <= 0.5:
            raise InputError(f"val_fraction must be between 0.05 and 0.5, got {self.val_fraction}")
        if self.threshold_folds < 0 or self.threshold_folds == 1:
            raise InputError(f"threshold_folds must be 0 (the validation split) or >= 2, got {self.threshold_folds}")
        if self.threshold_rule not in THRESHOLD_RULES:
            raise InputError(
                f"threshold rule {self.threshold_rule!r} is not one of {', '.join(THRESHOLD_RULES)}"
            )
        if self.calibration not in CALIBRATIONS:
            raise InputError(
                f"calibration {self.calibration!r} is not one of {', '.join(CALIBRATIONS)}"
            )
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise InputError(f"device {self.device!r} is not auto, cpu or cuda[:N]")


# ----------------------------------------------------------------------------------------
# Data helpers
# ----------------------------------------------------------------------------------------
def encode_labels(labels: Sequence[str]) -> np.ndarray:
    """`reasoning` -> 1, `knowledge` -> 0; anything else is an InputError."""
    out = np.empty(len(labels), dtype=int)
    for i, lab in enumerate(labels):
        if lab == "reasoning":
            out[i] = 1
        elif lab == "knowledge":
            out[i] = 0
        else:
            raise InputError(f"row {i + 1}: label {lab!r} is not reasoning or knowledge")
    return out


def stratified_split(y: Sequence[int] | np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held) with `fraction` of each class held out (at least 1 per class
    when the class has >= 2 rows). Deterministic for a seed."""
    t = np.asarray(y)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for c in np.unique(t):
        idx = np.flatnonzero(t == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.extend(idx[:k].tolist())
    held_arr = np.array(sorted(held), dtype=int)
    rest = np.setdiff1d(np.arange(len(t)), held_arr)
    return rest, held_arr


# ----------------------------------------------------------------------------------------
# The classifier interface
# ----------------------------------------------------------------------------------------
@dataclass
class ModelInfo:
    """What `curation_model.json` holds."""

    kind: str  # "transformer" | "tfidf"
    version: str
    base: str
    threshold: float
    calibration: dict[str, Any]
    max_length: int = 256
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    truncation: str = "head"  # models saved before this was recorded were cut at the head
    format_version: int = FORMAT_VERSION
    labels: tuple[str, str] = LABEL_NAMES
    input_format: str = "curation.schema.format_for_model: question, blank line, 'A. option' lines"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasoning_threshold"] = self.threshold
        d["labels"] = list(self.labels)
        return d


def new_version(base: str) -> str:
    """A unique, readable model version: ``<base short name>-<UTC time>-<random hex>``."""
    short = "tfidf" if base == "tfidf" else Path(base.rstrip("/")).name.lower()
    short = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in short)[:40] or "model"
    if "minilm" in short:
        short = "minilm"
    return f"{short}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


class Classifier:
    """A trained reasoning/knowledge classifier (transformer or tfidf).

    `fit_rows`: after `model.train`, the positions of the rows it was fitted on (`train`)
    and validated on (`validation`: early stopping, calibration, threshold); a loaded model
    has none (its folder's `seen_ids.json` says which questions it saw)."""

    info: ModelInfo
    fit_rows: dict[str, list[int]]  # set by model.train

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def n_labels(self) -> int:
        """How many labeled rows the model was fitted and validated on."""
        return int(self.info.metrics.get("n_train", 0)) + int(self.info.metrics.get("n_val", 0))

    @property
    def threshold(self) -> float:
        return self.info.threshold

    def logits(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        """Raw reasoning logit z per text (uncalibrated)."""
        raise NotImplementedError

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        """A dense feature vector per text (for diversity-based query strategies)."""
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        """Calibrated probability of `reasoning` per text."""
        z = self.logits(texts, batch_size=batch_size, progress=progress)
        return Calibrator.from_dict(self.info.calibration)(z)

    def save(self, out: str | os.PathLike[str], *, also: Callable[[Path], None] | None = None) -> Path:
        """Write the model folder `out`, which must not exist yet, whole or not at all: the
        files go into a hidden folder beside it (`curation.staging.staged_folder`) that is
        renamed to `out` once `curation_model.json` is written. `also(folder)` may add files
        (e.g. `seen_ids.json`) before the folder appears; if it fails, nothing appears."""
        from curation.staging import staged_folder

        with staged_folder(out, "writing", what="model folder") as folder:
            self._save_files(folder)
            if also is not None:
                also(folder)
            self._write_info(folder)  # last: a folder with curation_model.json is complete
        return Path(out).expanduser()

    def _save_files(self, folder: Path) -> None:
        """Write the weights (and tokenizer) into `folder`."""
        raise NotImplementedError

    def _write_info(self, folder: Path) -> None:
        (folder / MODEL_FILE).write_text(
            json.dumps(self.info.to_json(), indent=2, default=_json_default) + "\n", encoding="utf-8"
        )


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---- tfidf ----------------------------------------------------------------------------
class TfidfClassifier(Classifier):
    """TF-IDF (word 1-2 grams, sublinear tf) + L2 logistic regression (class-balanced)."""

    def __init__(self, vectorizer: Any, coef: np.ndarray, intercept: float, info: ModelInfo) -> None:
        self.vectorizer = vectorizer
        self.coef = np.asarray(coef, dtype=float).ravel()
        self.intercept = float(intercept)
        self.info = info
        self._svd: Any = None

    @staticmethod
    def make_vectorizer(max_features: int = 50_000, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            ngram_range=(1, 2), min_df=1 if vocabulary else 2, max_features=None if vocabulary else max_features,
            sublinear_tf=True, strip_accents="unicode", lowercase=True, vocabulary=vocabulary,
            dtype=np.float64,
        )

    def features(self, texts: Sequence[str]) -> Any:
        return self.vectorizer.transform(list(texts))

    def logits(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0)
        x = self.features(texts)
        return np.asarray(x @ self.coef + self.intercept, dtype=float).ravel()

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        """L2-normalised TF-IDF reduced to <= 64 dimensions with a truncated SVD fitted on `texts`."""
        from sklearn.decomposition import TruncatedSVD

        x = self.features(texts)
        k = max(1, min(64, x.shape[0] - 1, x.shape[1] - 1))
        if x.shape[0] < 3:
            dense = np.asarray(x.todense())
            return dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
        e = TruncatedSVD(n_components=k, random_state=0).fit_transform(x)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def _save_files(self, folder: Path) -> None:
        vocab = self.vectorizer.vocabulary_
        terms = sorted(vocab, key=vocab.__getitem__)
        np.savez_compressed(
            folder / "tfidf.npz",
            terms=np.array(terms, dtype=object).astype(str),
            idf=np.asarray(self.vectorizer.idf_, dtype=float),
            coef=self.coef,
            intercept=np.array([self.intercept]),
        )

    @classmethod
    def load(cls, path: Path, info: ModelInfo) -> TfidfClassifier:
        data = np.load(path / "tfidf.npz", allow_pickle=False)
        terms = [str(t) for t in data["terms"]]
        vec = cls.make_vectorizer(vocabulary={t: i for i, t in enumerate(terms)})
        vec.idf_ = data["idf"]
        return cls(vec, data["coef"], float(data["intercept"][0]), info)


def train_tfidf(
    texts: Sequence[str], y: np.ndarray, config: TrainConfig
) -> tuple[Any, np.ndarray, float]:
    """Fit the TF-IDF + logistic regression baseline; returns (vectorizer, coef, intercept)."""
    from sklearn.linear_model import LogisticRegression

    vec = TfidfClassifier.make_vectorizer(config.tfidf_max_features)
    try:
        x = vec.fit_transform(list(texts))
    except ValueError:  # every term below min_df on tiny data
        vec = TfidfClassifier.make_vectorizer(config.tfidf_max_features)
        vec.set_params(min_df=1)
        x = vec.fit_transform(list(texts))
    if len(np.unique(y)) < 2:
        p = float(np.clip(np.mean(y), 1e-3, 1 - 1e-3))
        return vec, np.zeros(x.shape[1]), math.log(p / (1 - p))
    lr = LogisticRegression(C=config.tfidf_c, class_weight="balanced", max_iter=2000, random_state=config.seed)
    lr.fit(x, y)
    return vec, lr.coef_.ravel(), float(lr.intercept_[0])


def tfidf_oof_logits(texts: Sequence[str], y: np.ndarray, config: TrainConfig) -> np.ndarray | None:
    """Out-of-fold TF-IDF logits over every row (stratified `config.threshold_folds` folds),
    for choosing the calibration and threshold without a held-back split; None when the
    folds are off or a class has fewer rows than folds."""
    k = config.threshold_folds
    if k < 2 or len(np.unique(y)) < 2 or int(np.bincount(y).min()) < k:
        return None
    from sklearn.model_selection import StratifiedKFold

    z = np.zeros(len(y))
    for a, b in StratifiedKFold(k, shuffle=True, random_state=config.seed).split(np.zeros(len(y)), y):
        vec, coef, icpt = train_tfidf([texts[i] for i in a], y[a], config)
        z[b] = np.asarray(vec.transform([texts[i] for i in b]) @ coef + icpt, dtype=float).ravel()
    return z
