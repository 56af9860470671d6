"""Decontamination of a training set against evaluation questions. Pure: rows in, ids out.

A training candidate is *contaminated* when it is

1. an **exact** match of an evaluation question: the same `normalize_text` of the question and
   the same multiset of normalized option texts (the definition of `schema.text_hash`, so it is
   invariant to option order, case, punctuation and whitespace); or
2. a **near duplicate**: the Jaccard similarity of the two questions' *shingle sets* is at least
   `JACCARD_THRESHOLD` (0.5). Shingles are the word bigrams of the normalized question and of
   each normalized option separately (a one-word option is its own shingle), so the set does not
   depend on the order of the options; bigrams never span two options.

Why these numbers: on the bundled data (MedMCQA training pool vs the evaluation sample) pairs at
Jaccard >= 0.5 were the same question reworded, re-punctuated or with shuffled options
("Which of the following is not used in hea failure?" vs "Which one of the following drugs are
not used in hea failure?", same four options: 0.56); below ~0.48 they were different questions
sharing an option list ("The maxillary sinus drains into the" vs "The frontal ... sinus drains
into the:", 0.47). Heavier paraphrases (a question rewritten in other words) are below the
threshold and are *not* caught: this is a textual, not a semantic, check.

Candidates are found with MinHash locality-sensitive hashing: datasketch's ``affine32``
MinHash scheme (the MurmurHash3 finalizer, then ``a*h + b mod 2^32`` per permutation, the
permutations drawn by ``datasketch.MinHash(num_perm, seed)``), computed for all questions at
once with numpy, then banded (``LSH_BANDS`` = 24 bands of ``LSH_ROWS`` = 2 rows). A pair whose Jaccard is exactly
the threshold becomes a candidate with probability ``1 - (1 - 0.5**2)**24 = 0.999`` (0.9999
from Jaccard 0.6). Candidate pairs whose MinHash estimate is more than 0.25 below the
threshold are dropped (3.5 standard deviations: a pair at the threshold survives with
probability 0.9998); every remaining pair is checked with the *exact* Jaccard of the two
shingle sets, so there are no false positives and the reported similarity is exact. datasketch's own ``MinHashLSH`` index gives the same candidates but costs ~0.2 ms per
insert plus ~0.7 ms per ``MinHash`` object here (over a minute for 100k questions), which is why
the banding is done in bulk (`benchmarks/release.py` compares the two).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray

from curation.errors import InputError
from curation.schema import ASCII_FOLD_BYTES

JACCARD_THRESHOLD = 0.5
NGRAM = 2
LSH_BANDS = 24
LSH_ROWS = 2
NUM_PERM = LSH_BANDS * LSH_ROWS
PREFILTER_MARGIN = 0.25
SEED = 1


_U32 = np.uint32
_U64 = np.uint64


@dataclass(frozen=True)
class Item:
    """One question as the decontamination sees it."""

    id: str
    question: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """Why a training candidate was removed: its closest evaluation question."""

    id: str
    match_id: str
    kind: str  # 'exact' | 'near'
    jaccard: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "match_id": self.match_id, "kind": self.kind, "jaccard": round(self.jaccard, 4)}


@dataclass(frozen=True)
class DecontamResult:
    kept: list[str]
    removed: list[Match]
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "n_candidates": len(self.kept) + len(self.removed),
            "n_kept": len(self.kept),
            "n_removed": len(self.removed),
            "n_exact": sum(m.kind == "exact" for m in self.removed),
            "n_near": sum(m.kind == "near" for m in self.removed),
            **self.params,
        }


def params() -> dict[str, Any]:
    """The method and its parameters, as recorded in a release manifest."""
    return {
        "method": "exact normalized text + MinHash LSH near duplicates (word n-gram Jaccard)",
        "normalization": "curation.schema.normalize_text (NFKC, casefold, punctuation removed, whitespace collapsed)",
        "ngram": NGRAM,
        "jaccard_threshold": JACCARD_THRESHOLD,
        "num_perm": NUM_PERM,
        "lsh_bands": LSH_BANDS,
        "lsh_rows": LSH_ROWS,
        "minhash_scheme": "datasketch affine32",
        "seed": SEED,
    }


def as_item(row: Mapping[str, Any]) -> Item:
    """Build an `Item` from a row with `id`, `question` and `options` ({letter: text}, a list of
    texts, or the JSON text of either)."""
    try:
        qid = row["id"]
        question = row["question"]
        options: Any = row.get("options") or {}
    except KeyError as exc:
        raise InputError(f"decontamination row lacks field {exc.args[0]!r}") from None
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError(f"question {qid!r}: options are not valid JSON ({exc.msg})") from None
    if type(options) is dict or isinstance(options, Mapping):
        texts = tuple(str(options[k]) for k in sorted(options))
    elif isinstance(options, Sequence):
        texts = tuple(str(v) for v in options)
    else:
        raise InputError(f"question {qid!r}: options must be an object or a list")
    if not isinstance(question, str):
        raise InputError(f"question {qid!r}: question text must be a string")
    return Item(str(qid), question, texts)


# -- normalization in bulk ----------------------------------------------------------------


# ASCII text: NFKC is the identity, casefold is lower(), `[^\w\s]` is "not alnum, not '_', not
# str.isspace()"; so normalize_text(t) is: lower-case, turn every other character into a space,
# collapse whitespace -- i.e. every run of characters outside [a-z0-9_] becomes one space
# (`schema.ASCII_FOLD_BYTES` does the first two for many texts at once).


class _PunctMap(dict[int, int]):
    r"""str.translate table: every character that `[^\w\s]` matches becomes a space. Python's
    re `\w` is exactly str.isalnum() or "_" and `\s` exactly str.isspace(); filled lazily."""

    def __missing__(self, c: int) -> int:
        ch = chr(c)
        v = c if (ch.isalnum() or ch == "_" or ch.isspace()) else 32
        self[c] = v
        return v


_PUNCT_MAP = _PunctMap()


class _PunctMapNul(_PunctMap):
    """`_PunctMap` that keeps NUL (the separator of `_unicode_normalize_many`)."""

    def __missing__(self, c: int) -> int:
        return 0 if c == 0 else super().__missing__(c)


_PUNCT_MAP_NUL = _PunctMapNul()


def _unicode_normalize(t: str) -> str:
    # normalize_text's two passes, with translate/split/join in place of the two regexes
    for _ in range(2):
        t = " ".join(unicodedata.normalize("NFKC", t).casefold().translate(_PUNCT_MAP).split())
    return t


def normalize_many(texts: Sequence[str]) -> list[str]:
    """`normalize_text` of every text, with the same result, many times faster.

    See `normalize_arrow`; property tests check it against `normalize_text`.
    """
    return normalize_arrow(texts).to_pylist()  # type: ignore[no-any-return]


def normalize_arrow(texts: Sequence[str]) -> Any:
    """`normalize_text` of every text as a pyarrow large_string array.

    ASCII texts (nearly all) are done in bulk: one bytes.translate over all of them
    concatenated (`schema.ASCII_FOLD_BYTES`: lower-case, every character outside [a-z0-9_] becomes a
    space; lengths are kept, so the concatenation's offsets still delimit the texts), then
    Arrow splits on whitespace runs and joins with one space. The others go through
    `_unicode_normalize_many`. ~3x faster than an Arrow regex, ~5x than per-text Python.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(texts)
    is_ascii = np.fromiter((t.isascii() for t in texts), dtype=bool, count=n)
    plain = texts if is_ascii.all() else [t if a else "" for t, a in zip(texts, is_ascii, strict=True)]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, plain), dtype=np.int64, count=n), out=offsets[1:])
    data = "".join(plain).encode("ascii").translate(ASCII_FOLD_BYTES)
    raw = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    words = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(raw))
    out = pc.binary_join(words, pa.scalar(" ", pa.large_string()))
    if not is_ascii.all():
        other = np.flatnonzero(~is_ascii)
        fixed = pa.array(_unicode_normalize_many([texts[i] for i in other]), type=pa.large_string())
        out = pc.replace_with_mask(out, pa.array(~is_ascii), fixed)
    return out


def _unicode_normalize_many(texts: list[str]) -> list[str]:
    """`_unicode_normalize` of each text, done on all of them joined by NUL at once.

    Every step works character by character and NUL survives each (NFKC leaves it alone and
    it is a starter, so nothing composes or reorders across it; casefold keeps it; the
    translate table below keeps it; it is not whitespace, so split/join keep it). Texts that
    contain NUL themselves are done one by one."""
    keep = [t for t in texts if "\x00" not in t]
    if len(keep) < 2:
        return [_unicode_normalize(t) for t in texts]
    joined = "\x00".join(keep)
    for _ in range(2):
        joined = " ".join(unicodedata.normalize("NFKC", joined).casefold().translate(_PUNCT_MAP_NUL).split())
    parts = iter(p.strip(" ") for p in joined.split("\x00"))
    return [next(parts) if "\x00" not in t else _unicode_normalize(t) for t in texts]


# -- hashing ------------------------------------------------------------------------------


def _word_hashes(words: Sequence[str]) -> NDArray[np.uint64]:
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(), "little") for w in words),
        dtype=_U64,
        count=len(words),
    )


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finalizer (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def _fmix32(h: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """MurmurHash3 32-bit finalizer, as datasketch's affine32 scheme applies it."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> _U32(16))
        h = h * _U32(0x85EBCA6B)
        h = h ^ (h >> _U32(13))
        h = h * _U32(0xC2B2AE35)
        return h ^ (h >> _U32(16))


def _permutations(num_perm: int, seed: int) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """The permutations of ``datasketch.MinHash(num_perm, seed, scheme="affine32")``, drawn the
    same way (a unit test checks they are equal) without importing datasketch (~1 s)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=_U32) * _U32(2) + _U32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=_U32)
    return a, b


@dataclass
class _Shingled:
    """Shingle hashes of n documents, concatenated; doc i owns hashes[starts[i]:ends[i]]."""

    hashes: NDArray[np.uint64]
    starts: NDArray[np.int64]
    ends: NDArray[np.int64]
    exact_keys: NDArray[np.uint64]  # order-free key of (question, option multiset)
    piece_ids: NDArray[np.int64]  # normalized-text id of every piece (questions, then options)
    opt_start: NDArray[np.int64]
    n_opts: NDArray[np.int64]

    def doc(self, i: int) -> NDArray[np.uint64]:
        return self.hashes[self.starts[i] : self.ends[i]]

    def exact_parts(self, i: int) -> tuple[int, tuple[int, ...]]:
        """(question text id, sorted option text ids): equal iff exact duplicates."""
        s = int(self.opt_start[i])
        return int(self.piece_ids[i]), tuple(sorted(self.piece_ids[s : s + int(self.n_opts[i])].tolist()))


def _shingle(questions: Sequence[str], options: Sequence[Sequence[str]]) -> _Shingled:
    """Normalize and shingle many questions at once (pyarrow + numpy after normalization)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n_docs = len(questions)
    n_opts = np.fromiter((len(o) for o in options), dtype=np.int64, count=n_docs)
    pieces: list[str] = list(questions)
    pieces += chain.from_iterable(options)
    norm = normalize_arrow(pieces)
    # piece -> doc: questions first (doc i), then the options in doc order
    doc_of_piece = np.concatenate(
        [np.arange(n_docs, dtype=np.int64), np.repeat(np.arange(n_docs, dtype=np.int64), n_opts)]
    )
    is_question = np.zeros(len(pieces), dtype=bool)
    is_question[:n_docs] = True

    # exact key: ids of the normalized pieces (dictionary-encoded, so equal text <=> equal id),
    # the question's id mixed with an order-free sum over the option ids
    enc = pc.dictionary_encode(norm)
    pid = np.asarray(enc.indices, dtype=np.int64).astype(_U64)
    with np.errstate(over="ignore"):
        opt_mix = np.zeros(n_docs, dtype=_U64)
        np.add.at(opt_mix, doc_of_piece[n_docs:], _mix64(pid[n_docs:] ^ _U64(0xA0761D6478BD642F)))
        exact_keys = _mix64(_mix64(pid[:n_docs] * _U64(0x9E3779B97F4A7C15)) ^ opt_mix)

    split = pc.split_pattern(norm, " ")
    offsets = np.asarray(split.offsets, dtype=np.int64)
    flat = split.flatten()
    piece_of_tok = np.repeat(np.arange(len(pieces), dtype=np.int64), np.diff(offsets))
    nonempty = np.asarray(pc.not_equal(flat, ""), dtype=bool) if len(flat) else np.zeros(0, dtype=bool)
    if len(flat) and not nonempty.all():
        flat = flat.filter(pa.array(nonempty))
        piece_of_tok = piece_of_tok[nonempty]
    words = pc.dictionary_encode(flat)
    tok_hash = _word_hashes(words.dictionary.to_pylist())[np.asarray(words.indices, dtype=np.int64)] if len(flat) else np.zeros(0, dtype=_U64)
    counts = np.bincount(piece_of_tok, minlength=len(pieces))

    with np.errstate(over="ignore"):
        if len(tok_hash) >= 2:
            same = piece_of_tok[:-1] == piece_of_tok[1:]
            big = _mix64(tok_hash[:-1] * _U64(0x9E3779B97F4A7C15) ^ tok_hash[1:])[same]
            big_doc = doc_of_piece[piece_of_tok[:-1][same]]
        else:
            big = np.zeros(0, dtype=_U64)
            big_doc = np.zeros(0, dtype=np.int64)
        single = np.flatnonzero(counts == 1)
        first_tok = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        uni = _mix64(tok_hash[first_tok[single]] ^ _U64(0xD6E8FEB86659FD93)) if len(single) else np.zeros(0, dtype=_U64)
        uni_doc = doc_of_piece[single]
    all_hash = np.concatenate([big, uni])
    all_doc = np.concatenate([big_doc, uni_doc])
    # group by document (a few sorted runs: a stable sort merges them in linear time); a
    # document's shingles may repeat, which changes no minimum (`_jaccard` dedups)
    order = np.argsort(all_doc, kind="stable")
    all_hash, all_doc = all_hash[order], all_doc[order]
    starts = np.searchsorted(all_doc, np.arange(n_docs), side="left").astype(np.int64)
    ends = np.searchsorted(all_doc, np.arange(n_docs), side="right").astype(np.int64)
    opt_start = np.concatenate([[0], np.cumsum(n_opts)[:-1]]).astype(np.int64) + n_docs
    return _Shingled(all_hash, starts, ends, exact_keys, pid.astype(np.int64), opt_start, n_opts)


def signatures(sh: _Shingled, num_perm: int = NUM_PERM, seed: int = SEED) -> NDArray[np.uint32]:
    """MinHash signatures (n_docs x num_perm), identical to datasketch's affine32 `MinHash`
    updated with the documents' shingles (hashed to the low 32 bits of our 64-bit hashes)."""
    n_docs = len(sh.starts)
    sig = np.full((n_docs, num_perm), np.iinfo(np.uint32).max, dtype=_U32)
    nonempty = np.flatnonzero(sh.ends > sh.starts)
    if not len(nonempty):
        return sig
    h = _fmix32((sh.hashes & _U64(0xFFFFFFFF)).astype(_U32))
    a, b = _permutations(num_perm, seed)
    # blocks of whole documents, ~16k shingles each, so the (shingles x perms) block stays in cache
    block = 16_384
    i = 0
    with np.errstate(over="ignore"):
        while i < len(nonempty):
            j = int(np.searchsorted(sh.starts[nonempty], sh.starts[nonempty[i]] + block, side="left"))
            j = max(j, i + 1)
            docs = nonempty[i:j]
            lo, hi = int(sh.starts[docs[0]]), int(sh.ends[docs[-1]])
            phv = h[lo:hi, None] * a[None, :] + b[None, :]
            sig[docs] = np.minimum.reduceat(phv, sh.starts[docs] - lo, axis=0)
            i = j
    return sig


def _band_keys(sig: NDArray[np.uint32], bands: int, rows: int) -> NDArray[np.uint64]:
    """One uint64 key per (document, band): a hash of the band's rows and the band number."""
    n = sig.shape[0]
    v = sig[:, : bands * rows].reshape(n, bands, rows).astype(_U64)
    with np.errstate(over="ignore"):
        key: NDArray[np.uint64] = np.zeros((n, bands), dtype=_U64)
        for r in range(rows):
            key = _mix64(key * _U64(0x100000001B3) ^ v[:, :, r])
        key = _mix64(key ^ (np.arange(bands, dtype=_U64) * _U64(0x9E3779B97F4A7C15))[None, :])
    return key


def _candidate_pairs(
    sig_c: NDArray[np.uint32], sig_r: NDArray[np.uint32], ok_c: NDArray[np.bool_], ok_r: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """(candidate index, reference index) pairs that share at least one band: a sort-merge
    join of the two sides' band keys."""
    c_idx = np.repeat(np.flatnonzero(ok_c), LSH_BANDS)
    r_idx = np.repeat(np.flatnonzero(ok_r), LSH_BANDS)
    if not len(c_idx) or not len(r_idx):
        return np.zeros((0, 2), dtype=np.int64)
    c_key: NDArray[np.uint64] = _band_keys(sig_c[ok_c], LSH_BANDS, LSH_ROWS).ravel()
    r_key: NDArray[np.uint64] = _band_keys(sig_r[ok_r], LSH_BANDS, LSH_ROWS).ravel()
    # keep only keys present on both sides, then sort each side
    common = np.intersect1d(c_key, r_key)
    if not len(common):
        return np.zeros((0, 2), dtype=np.int64)
    cm = np.isin(c_key, common)
    rm = np.isin(r_key, common)
    c_key, c_idx = c_key[cm], c_idx[cm]
    r_key, r_idx = r_key[rm], r_idx[rm]
    order = np.argsort(r_key, kind="stable")
    r_key, r_idx = r_key[order], r_idx[order]
    lo = np.searchsorted(r_key, c_key, side="left")
    hi = np.searchsorted(r_key, c_key, side="right")
    cnt = hi - lo
    rep_c = np.repeat(c_idx, cnt)
    offs = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rep_r = r_idx[np.repeat(lo, cnt) + offs]
    n_r = np.int64(len(sig_r))
    pairs = np.unique(rep_c * n_r + rep_r)
    return np.stack([pairs // n_r, pairs % n_r], axis=1)


def _prefilter(pairs: NDArray[np.int64], sig: NDArray[np.uint32], nc: int, threshold: float) -> NDArray[np.int64]:
    """Drop candidate pairs whose MinHash estimate of Jaccard is far below the threshold.

    The estimate (share of equal signature values) has a standard deviation of at most
    0.5 / sqrt(NUM_PERM) = 0.072; a pair is dropped when its estimate is below
    `threshold - PREFILTER_MARGIN` (0.25 = 3.5 sd), so a pair at exactly the threshold is lost
    with probability ~2e-4. This keeps the exact check to a handful of pairs per candidate.
    """
    if not len(pairs):
        return pairs
    keep = np.zeros(len(pairs), dtype=bool)
    step = 100_000
    for s in range(0, len(pairs), step):
        p = pairs[s : s + step]
        est = (sig[p[:, 0]] == sig[nc + p[:, 1]]).mean(axis=1)
        keep[s : s + step] = est >= threshold - PREFILTER_MARGIN
    return pairs[keep]


def _jaccard(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> float:
    if not len(a) or not len(b):
        return 0.0
    a, b = np.unique(a), np.unique(b)
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def jaccard(a: Item, b: Item) -> float:
    """Exact Jaccard similarity of two questions' shingle sets (the near-duplicate measure)."""
    sh = _shingle([a.question, b.question], [a.options, b.options])
    return _jaccard(sh.doc(0), sh.doc(1))


def decontaminate(
    candidates: Iterable[Item | Mapping[str, Any]],
    references: Iterable[Item | Mapping[str, Any]],
    *,
    threshold: float = JACCARD_THRESHOLD,
) -> DecontamResult:
    """Split `candidates` (training questions) into kept ids and removed ones with their match.

    `references` are the evaluation questions; rows are `Item`s or mappings with `id`,
    `question`, `options` (see `as_item`). A removed candidate lists one match: an exact one if
    any (the smallest reference id), else its most similar near duplicate (ties: the smallest
    id). `kept` and `removed` follow the candidates' order. Deterministic.
    """
    cand = [c if isinstance(c, Item) else as_item(c) for c in candidates]
    refs = [r if isinstance(r, Item) else as_item(r) for r in references]
    return decontaminate_columns(
        [c.id for c in cand], [c.question for c in cand], [c.options for c in cand],
        [r.id for r in refs], [r.question for r in refs], [r.options for r in refs],
        threshold=threshold,
    )


def decontaminate_columns(
    cand_ids: Sequence[str],
    cand_questions: Sequence[str],
    cand_options: Sequence[Sequence[str]],
    ref_ids: Sequence[str],
    ref_questions: Sequence[str],
    ref_options: Sequence[Sequence[str]],
    *,
    threshold: float = JACCARD_THRESHOLD,
) -> DecontamResult:
    """`decontaminate` on columns (ids, question texts, lists of option texts): no row objects."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"Jaccard threshold {threshold} must be in (0, 1]")
    if not (len(cand_ids) == len(cand_questions) == len(cand_options)):
        raise InputError("candidate columns have different lengths")
    if not (len(ref_ids) == len(ref_questions) == len(ref_options)):
        raise InputError("reference columns have different lengths")
    run_params = {**params(), "jaccard_threshold": threshold}
    nc, nr = len(cand_ids), len(ref_ids)
    if not nc:
        return DecontamResult([], [], run_params)
    sh = _shingle(list(cand_questions) + list(ref_questions), list(cand_options) + list(ref_options))

    # exact: candidates whose key equals a reference's key (confirmed on the text ids)
    exact: dict[int, str] = {}
    if nr:
        ref_keys = sh.exact_keys[nc:]
        hit = np.flatnonzero(np.isin(sh.exact_keys[:nc], ref_keys))
        if len(hit):
            by_key: dict[int, list[int]] = {}
            for j in np.flatnonzero(np.isin(ref_keys, sh.exact_keys[hit])).tolist():
                by_key.setdefault(int(ref_keys[j]), []).append(j)
            for i in hit.tolist():
                parts = sh.exact_parts(i)
                ids = [ref_ids[j] for j in by_key[int(sh.exact_keys[i])] if sh.exact_parts(nc + j) == parts]
                if ids:
                    exact[i] = min(ids)

    best: dict[int, tuple[float, str]] = {}
    if nr:
        sig = signatures(sh)
        nonempty = sh.ends > sh.starts
        pairs = _candidate_pairs(sig[:nc], sig[nc:], nonempty[:nc], nonempty[nc:])
        pairs = _prefilter(pairs, sig, nc, threshold)
        for ci, rj in pairs.tolist():
            if ci in exact:
                continue
            s = _jaccard(sh.doc(ci), sh.doc(nc + rj))
            if s + 1e-12 < threshold:
                continue
            rid = ref_ids[rj]
            prev = best.get(ci)
            if prev is None or s > prev[0] or (s == prev[0] and rid < prev[1]):
                best[ci] = (s, rid)

    kept: list[str] = []
    removed: list[Match] = []
    for i, cid in enumerate(cand_ids):
        if i in exact:
            removed.append(Match(cid, exact[i], "exact", 1.0))
        elif i in best:
            removed.append(Match(cid, best[i][1], "near", best[i][0]))
        else:
            kept.append(cid)
    return DecontamResult(kept, removed, run_params)
