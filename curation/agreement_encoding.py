"""The machinery under `curation.agreement` (internal; use that module's functions).

Rows are validated and encoded once into an item x rater integer matrix (`_Encoded`,
`_encode`; ``MISSING`` where a rater did not label an item), and every coefficient has a
vectorised form: a weighted sum over items, for one weight vector or a stack of them.
Weights of 1 give the point estimate; a bootstrap replicate is the vector of how many
times each item was drawn (`_weights`). `curation.agreement`'s module docstring states the
conventions (pairable items, no variation, percent agreement, Fleiss' generalisation) that
these forms implement.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from curation.errors import InputError

LabelRow = tuple[str, str, str]
"""One current label: ``(item_id, rater, label)``."""

MISSING = -1
"""Code for "this rater did not label this item" in the encoded matrix."""


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class _Encoded:
    """Rows encoded once: ``codes[i, r]`` is the category index rater r gave item i, or -1."""

    items: tuple[str, ...]
    raters: tuple[str, ...]
    categories: tuple[str, ...]
    codes: NDArray[np.int64]  # (n_items, n_raters)

    @property
    def counts(self) -> NDArray[np.float64]:
        """Item x category table of how many raters chose each category."""
        n_items, n_cat = len(self.items), len(self.categories)
        table = np.zeros((n_items, n_cat), dtype=np.float64)
        for c in range(n_cat):
            table[:, c] = (self.codes == c).sum(axis=1)
        return table

    @property
    def n_per_item(self) -> NDArray[np.int64]:
        """Number of raters per item."""
        return np.asarray((self.codes != MISSING).sum(axis=1), dtype=np.int64)

    def subset(self, mask: NDArray[np.bool_]) -> _Encoded:
        """The same encoding restricted to the items where ``mask`` is true (raters and
        categories that no longer occur are dropped)."""
        codes = self.codes[mask]
        keep_r = (codes != MISSING).any(axis=0)
        codes = codes[:, keep_r]
        used = np.unique(codes[codes != MISSING])
        remap = np.full(len(self.categories) + 1, MISSING, dtype=np.int64)
        remap[used] = np.arange(len(used))
        codes = np.where(codes == MISSING, MISSING, remap[codes])
        return _Encoded(
            items=tuple(i for i, m in zip(self.items, mask, strict=True) if m),
            raters=tuple(r for r, k in zip(self.raters, keep_r, strict=True) if k),
            categories=tuple(self.categories[int(u)] for u in used),
            codes=np.asarray(codes, dtype=np.int64),
        )


def _validate(rows: Iterable[LabelRow]) -> list[LabelRow]:
    """Check shapes and types; a rater may label an item only once."""
    out: list[LabelRow] = []
    seen: dict[tuple[str, str], int] = {}
    for n, row in enumerate(rows):
        where = f"rows[{n}]"
        if not isinstance(row, tuple | list) or len(row) != 3:
            raise InputError(
                f"expected an (item_id, rater, label) triple, got {row!r}; "
                "pass one current label per (item, rater)",
                location=where,
            )
        item, rater, label = row
        for name, value in (("item_id", item), ("rater", rater), ("label", label)):
            if not isinstance(value, str) or not value:
                raise InputError(
                    f"{name} must be a non-empty string, got {value!r}", location=where
                )
        key = (item, rater)
        if key in seen:
            raise InputError(
                f"rater {rater!r} labeled item {item!r} twice (also rows[{seen[key]}]); "
                "pass only the current label per (item, rater), e.g. from current_labels()",
                location=where,
            )
        seen[key] = n
        out.append((item, rater, label))
    return out


def _encode(rows: Iterable[LabelRow]) -> _Encoded:
    """Validate and encode rows into an item x rater code matrix (ids sorted)."""
    valid = _validate(rows)
    items = tuple(sorted({r[0] for r in valid}))
    raters = tuple(sorted({r[1] for r in valid}))
    categories = tuple(sorted({r[2] for r in valid}))
    ii = {v: k for k, v in enumerate(items)}
    rr = {v: k for k, v in enumerate(raters)}
    cc = {v: k for k, v in enumerate(categories)}
    codes = np.full((len(items), len(raters)), MISSING, dtype=np.int64)
    for item, rater, label in valid:
        codes[ii[item], rr[rater]] = cc[label]
    return _Encoded(items, raters, categories, codes)


def _pairable(enc: _Encoded) -> _Encoded:
    """Only the items with at least two raters."""
    return enc.subset(enc.n_per_item >= 2)


def _require_pairable(rows: Sequence[LabelRow], what: str) -> _Encoded:
    enc = _encode(rows)
    if not enc.items:
        raise InputError(f"no labels given; {what} needs labels from at least two raters")
    pair = _pairable(enc)
    if not pair.items:
        raise InputError(
            f"no item has labels from at least two raters ({len(enc.items)} item(s) with one "
            f"label each); {what} needs overlap: assign items to two or more annotators"
        )
    return pair


def _pair_codes(enc: _Encoded, r1: int, r2: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    both = (enc.codes[:, r1] != MISSING) & (enc.codes[:, r2] != MISSING)
    return enc.codes[both, r1], enc.codes[both, r2]


# ---------------------------------------------------------- vectorised (weighted) forms
#
# Each takes per-item arrays and item weights ``w`` of shape (n_items,) or (n_boot, n_items)
# and returns the coefficient for each weight vector. w = 1 gives the point estimate;
# a bootstrap replicate is w = how many times each item was drawn.


def _weights(n_items: int, n_boot: int, seed: int) -> NDArray[np.float64]:
    """Item multiplicities of ``n_boot`` resamples of ``n_items`` items (rows: replicates)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise InputError(f"n_boot must be a positive integer, got {n_boot!r}")
    idx = _resample_indices(n_items, n_boot, seed)
    flat = idx + (np.arange(n_boot, dtype=np.int64) * n_items)[:, None]
    w = np.bincount(flat.ravel(), minlength=n_boot * n_items).reshape(n_boot, n_items)
    return w.astype(np.float64)


def _resample_indices(n_items: int, n_boot: int, seed: int) -> NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_items, size=(n_boot, n_items), dtype=np.int64)


def _div(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))


def _chance_corrected(
    observed: NDArray[np.float64], expected: NDArray[np.float64]
) -> NDArray[np.float64]:
    """(po - pe) / (1 - pe), with the no-variation convention (pe == 1 -> 1.0)."""
    degenerate = np.isclose(expected, 1.0, rtol=0, atol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (observed - expected) / np.where(degenerate, 1.0, 1.0 - expected)
    return np.asarray(np.where(degenerate, np.where(np.isnan(observed), np.nan, 1.0), k))


def _item_agreement(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    m = counts.sum(axis=1)
    return np.asarray(((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1)))


def _percent_weighted(counts: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    return _div(w @ _item_agreement(counts), w.sum(axis=-1))


def _fleiss_weighted(counts: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    m = counts.sum(axis=1)
    total = w.sum(axis=-1)
    po = _div(w @ _item_agreement(counts), total)
    pi = _div(np.asarray(w @ (counts / m[:, None])), np.asarray(total)[..., None])
    pe = (pi**2).sum(axis=-1)
    return _chance_corrected(po, pe)


def _kripp_weighted(counts: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    # Nominal alpha = 1 - (n - 1) * sum_u d_u / (n^2 - sum_c n_c^2),
    # d_u = (m_u^2 - sum_c n_uc^2) / (m_u - 1)  (Krippendorff 2011, "Computing Krippendorff's alpha").
    m = counts.sum(axis=1)
    d = (m**2 - (counts**2).sum(axis=1)) / (m - 1)
    n = w @ m
    n_c = w @ counts
    den = n**2 - (n_c**2).sum(axis=-1)
    num = (n - 1) * (w @ d)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 1.0 - num / np.where(den > 0, den, 1.0)
    return np.asarray(np.where(den > 0, a, np.where(n > 0, 1.0, np.nan)))


def _cohen_features(x: NDArray[np.int64], y: NDArray[np.int64], n_cat: int) -> NDArray[np.float64]:
    """Per-item columns [shared, agree, onehot(x) * shared, onehot(y) * shared] for two
    code vectors (MISSING where a rater did not label the item)."""
    shared = (x != MISSING) & (y != MISSING)
    cols = [shared, shared & (x == y)]
    cols += [shared & (x == c) for c in range(n_cat)]
    cols += [shared & (y == c) for c in range(n_cat)]
    return np.stack(cols, axis=1).astype(np.float64)


def _cohen_from_sums(
    sums: NDArray[np.float64], n_cat: int, min_items: float = 1.0
) -> NDArray[np.float64]:
    """Kappa from summed ``_cohen_features`` (last axis); NaN when fewer than ``min_items``."""
    n = sums[..., 0]
    po = _div(sums[..., 1], n)
    px = _div(sums[..., 2 : 2 + n_cat], n[..., None])
    py = _div(sums[..., 2 + n_cat : 2 + 2 * n_cat], n[..., None])
    pe = (px * py).sum(axis=-1)
    k = _chance_corrected(po, pe)
    return np.asarray(np.where(n >= min_items, k, np.nan))


def _pairs(enc: _Encoded) -> list[tuple[int, int]]:
    n_r = len(enc.raters)
    return [(a, b) for a in range(n_r) for b in range(a + 1, n_r)]


def _pair_sums(
    enc: _Encoded, w: NDArray[np.float64]
) -> tuple[list[tuple[int, int]], NDArray[np.float64]]:
    """Weighted sums of Cohen features for every rater pair: shape w.shape[:-1] + (P, F)."""
    pairs = _pairs(enc)
    n_cat = len(enc.categories)
    n_feat = 2 + 2 * n_cat
    if not pairs:
        return pairs, np.zeros(w.shape[:-1] + (0, n_feat))
    feats = np.concatenate(
        [_cohen_features(enc.codes[:, a], enc.codes[:, b], n_cat) for a, b in pairs], axis=1
    )
    sums = w @ feats
    return pairs, sums.reshape(w.shape[:-1] + (len(pairs), n_feat))


def _mean_pairwise_weighted(enc: _Encoded, w: NDArray[np.float64]) -> NDArray[np.float64]:
    _, sums = _pair_sums(enc, w)
    k = _cohen_from_sums(sums, len(enc.categories), min_items=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN
        return np.asarray(np.nanmean(k, axis=-1)) if k.shape[-1] else np.full(w.shape[:-1], np.nan)

