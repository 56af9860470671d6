"""Inter-annotator agreement: kappas, Krippendorff's alpha, percent agreement, bootstrap CIs.

Pure functions: rows in, numbers (or a JSON-ready dict) out; no I/O, no printing. The row
encoding and the vectorised (weighted) form of each coefficient are in
``curation.agreement_encoding``.

Input is a sequence of ``LabelRow`` tuples ``(item_id, rater, label)`` -- one current label per
(item, rater), e.g. from ``curation.store.annotations.current_labels``. Labels are arbitrary
strings (``reasoning`` / ``knowledge`` in practice); every coefficient is the nominal one.

Conventions (the same for every function in this module):

* **Pairable items.** Agreement is only defined on items labeled by at least two raters. Items
  with a single label are dropped (``agreement_report`` says how many). A function that must
  return one coefficient raises ``InputError`` when no item is pairable.
* **Point estimates equal the reference libraries'**: Cohen's kappa
  ``sklearn.metrics.cohen_kappa_score``, Fleiss' kappa ``statsmodels.stats.inter_rater``,
  Krippendorff's alpha the ``krippendorff`` package (called), Wilson intervals
  ``statsmodels.stats.proportion.proportion_confint``. Cohen's kappa and the Wilson interval
  are the closed forms of ``curation.metrics`` (``proportion_ci`` is ``metrics.wilson_ci``);
  Fleiss' kappa is a closed form here. Each is tested for equality against the library on many
  inputs: scikit-learn and statsmodels take ~3 s each to import, which the CLI, the app's
  agreement page and a release build do not pay. Fleiss' kappa with unequal rater counts is
  the generalisation below, and inside ``agreement_report`` the per-block mean pairwise Cohen
  and the per-annotator kappas use the vectorised form at unit weights.
* **No variation.** When every label in the data is the same category, the chance-corrected
  coefficients are 0/0 (expected agreement is 1). We define them as ``1.0``: every pair of
  ratings agrees and nothing contradicts perfect agreement. (The libraries return NaN or raise.)
* **Percent agreement** is the mean over pairable items of the share of agreeing rater pairs on
  that item, ``sum_k n_ik (n_ik - 1) / (n_i (n_i - 1))`` -- Fleiss' observed agreement, which
  also handles items with different numbers of raters.
* **Fleiss' kappa**, also with unequal rater counts (where statsmodels' function does not
  apply: it asserts equal counts), is computed in closed form with the standard
  generalisation (Gwet 2014, *Handbook of Inter-Rater Reliability*, 4th ed., sec. 2.5;
  R ``irrCAC::fleiss.kappa.raw``): observed agreement as above, chance agreement
  ``sum_k pi_k^2`` with ``pi_k`` the mean over items of ``n_ik / n_i``. It equals statsmodels'
  ``fleiss_kappa`` whenever the counts are equal (tested against it); importing statsmodels
  (scipy.stats) would cost a release build ~3 s.
* **Bootstrap** resamples *items* with replacement (the raters of a resampled item come with
  it), ``n_boot`` times, from ``numpy.random.default_rng(seed)``, and returns the percentile
  interval. Replicates where a coefficient is undefined (NaN) are ignored; if every replicate
  is NaN the interval is ``(nan, nan)``. Items are ordered by id before resampling, so results
  do not depend on row order. For this module's own statistics the bootstrap is vectorised: the
  rows are encoded once into an item x rater integer matrix, each replicate is a vector of item
  multiplicities, and every coefficient is a weighted sum over items (same replicates, same
  numbers as recomputing the statistic on resampled rows -- tested). Any other callable falls
  back to recomputing it on resampled rows.
* **Speed**, measured on the 2-core dev machine while other jobs ran (load average 5-7), for
  2,000 items x 3 raters (drawn from a pool of 6) x 1,000 resamples: ``bootstrap_ci`` with any of
  the four coefficients 0.08-0.25 s; the whole ``agreement_report`` with 4 groups 1.1-1.4 s
  (10-rater pool: ~2 s; 20: ~4 s). Krippendorff's alpha
  is as fast as the others, so every statistic uses all ``n_boot`` resamples. Recomputing a
  statistic on resampled rows (the fallback) costs 60-90 s for the same 1,000 resamples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import krippendorff
import numpy as np
from numpy.typing import NDArray

from curation import metrics
from curation.agreement_encoding import (
    MISSING,
    LabelRow,
    _cohen_features,
    _cohen_from_sums,
    _div,
    _encode,
    _Encoded,
    _fleiss_weighted,
    _item_agreement,
    _kripp_weighted,
    _mean_pairwise_weighted,
    _pair_codes,
    _pair_sums,
    _pairable,
    _pairs,
    _percent_weighted,
    _require_pairable,
    _resample_indices,
    _weights,
)
from curation.errors import InputError

__all__ = [
    "LabelRow",
    "agreement_report",
    "bootstrap_ci",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "majority_label",
    "mean_pairwise_cohen",
    "pairwise_cohen",
    "percent_agreement",
    "proportion_ci",
]

Statistic = Callable[[Sequence[LabelRow]], float]


# ------------------------------------------------------------------- point estimates


def majority_label(labels: Sequence[str]) -> str | None:
    """The most frequent label, or ``None`` on a tie for first place (or no labels)."""
    if not labels:
        return None
    top = Counter(labels).most_common(2)
    if len(top) == 2 and top[0][1] == top[1][1]:
        return None
    return top[0][0]


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two raters' labels on the same items (equal to ``sklearn``'s).

    ``a[i]`` and ``b[i]`` are the two labels of item i. If both raters used one and the same
    category throughout, kappa is 0/0; we return 1.0 (see the module docstring).
    """
    if len(a) != len(b):
        raise InputError(
            f"the two label sequences differ in length ({len(a)} vs {len(b)}); "
            "pass one label per shared item from each rater"
        )
    if not a:
        raise InputError("no shared items; Cohen's kappa needs at least one item labeled by both")
    for name, seq in (("a", a), ("b", b)):
        for i, v in enumerate(seq):
            if not isinstance(v, str) or not v:
                raise InputError(
                    f"label must be a non-empty string, got {v!r}", location=f"{name}[{i}]"
                )
    return metrics.cohen_kappa(list(a), list(b))


def percent_agreement(rows: Sequence[LabelRow]) -> float:
    """Mean over items (with >= 2 raters) of the share of rater pairs that agree."""
    return _percent_enc(_require_pairable(rows, "percent agreement"))


def _percent_enc(enc: _Encoded) -> float:
    return float(np.mean(_item_agreement(enc.counts)))


def fleiss_kappa(rows: Sequence[LabelRow]) -> float:
    """Fleiss' kappa over items with >= 2 raters (closed form, equal to ``statsmodels`` on equal
    rater counts; see the module docstring for items with different numbers of raters)."""
    return _fleiss_enc(_require_pairable(rows, "Fleiss' kappa"))


def _fleiss_enc(enc: _Encoded) -> float:
    if len(enc.categories) == 1:
        return 1.0
    return float(_fleiss_weighted(enc.counts, np.ones(len(enc.items)))[()])


def krippendorff_alpha(rows: Sequence[LabelRow]) -> float:
    """Krippendorff's alpha (nominal) with missing labels as NaN (``krippendorff`` package)."""
    return _kripp_enc(_require_pairable(rows, "Krippendorff's alpha"))


def _kripp_enc(enc: _Encoded) -> float:
    if len(enc.categories) == 1:
        return 1.0
    data = np.where(enc.codes == MISSING, np.nan, enc.codes.astype(np.float64)).T
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))



def pairwise_cohen(
    rows: Sequence[LabelRow], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> list[dict[str, Any]]:
    """Cohen's kappa for every pair of raters that share at least one item.

    Returns one dict per pair, sorted by rater names: ``rater_a``, ``rater_b``, ``n_items``
    (shared items), ``percent_agreement``, ``kappa``, ``ci_low``, ``ci_high``. The
    bootstrap resamples all items with >= 2 raters, so the pair's shared items come along with
    random multiplicities; replicates without a shared item are skipped. Floats may be NaN;
    ``agreement_report`` turns them into ``None``.
    """
    metrics.check_alpha(alpha)
    enc = _require_pairable(rows, "pairwise Cohen's kappa")
    return _pairwise(enc, _weights(len(enc.items), n_boot, seed), alpha)


def mean_pairwise_cohen(rows: Sequence[LabelRow]) -> float:
    """Mean of Cohen's kappa over rater pairs sharing at least two items (Light's kappa).

    Pairs sharing a single item are left out (their kappa is 0 or 1 by construction). NaN when
    no pair shares two items.
    """
    return _mean_pairwise_enc(_require_pairable(rows, "mean pairwise Cohen's kappa"))


def _mean_pairwise_enc(enc: _Encoded) -> float:
    kappas = []
    for r1, r2 in _pairs(enc):
        a, b = _pair_codes(enc, r1, r2)
        if len(a) >= 2:
            kappas.append(metrics.cohen_kappa(a, b))
    return float(np.mean(kappas)) if kappas else math.nan


proportion_ci = metrics.wilson_ci
"""Wilson score interval for ``k`` successes out of ``n`` (``curation.metrics.wilson_ci``)."""


_Vectorised = Callable[[_Encoded, NDArray[np.float64]], NDArray[np.float64]]

_FAST: dict[Callable[..., float], _Vectorised] = {
    percent_agreement: lambda e, w: _percent_weighted(e.counts, w),
    fleiss_kappa: lambda e, w: _fleiss_weighted(e.counts, w),
    krippendorff_alpha: lambda e, w: _kripp_weighted(e.counts, w),
    mean_pairwise_cohen: _mean_pairwise_weighted,
}


# ------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    rows: Sequence[LabelRow],
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(rows)``, resampling items (with all their
    labels) with replacement. Deterministic for a given seed and independent of row order.

    Only items with >= 2 raters are resampled (the others never count). For this module's
    coefficients the resampling is vectorised; any other ``statistic`` is recomputed on each
    resampled set of rows (a resampled item's id gets a ``#k`` suffix to stay unique). A
    replicate where the statistic is NaN or raises ``InputError`` is skipped.
    """
    metrics.check_alpha(alpha)
    enc = _require_pairable(rows, "the bootstrap")
    w = _weights(len(enc.items), n_boot, seed)
    fast = _FAST.get(statistic)
    if fast is not None:
        return metrics.percentile_ci(fast(enc, w), alpha)
    return metrics.percentile_ci(_slow_replicates(enc, statistic, n_boot, seed), alpha)


def _slow_replicates(
    enc: _Encoded, statistic: Statistic, n_boot: int, seed: int
) -> NDArray[np.float64]:
    idx = _resample_indices(len(enc.items), n_boot, seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        rows: list[LabelRow] = []
        for k, i in enumerate(idx[b]):
            for r, c in enumerate(enc.codes[i]):
                if c != MISSING:
                    rows.append((f"{enc.items[i]}#{k}", enc.raters[r], enc.categories[c]))
        try:
            reps[b] = statistic(rows)
        except InputError:
            reps[b] = math.nan
    return reps


# ------------------------------------------------------------------------------ report


def _value(point: float, reps: NDArray[np.float64], alpha: float) -> dict[str, Any]:
    lo, hi = metrics.percentile_ci(reps, alpha)
    return {"value": metrics.finite(point), "ci": [metrics.finite(lo), metrics.finite(hi)]}


def _empty_value() -> dict[str, Any]:
    return {"value": None, "ci": [None, None]}


def _block(
    enc_all: _Encoded,
    n_boot: int,
    seed: int,
    alpha: float,
    w: NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Overall or per-group coefficients with CIs (the ``BLOCK`` of ``agreement_report``).

    Point estimates: percent agreement, Fleiss' kappa and Krippendorff's alpha from the same
    code as the public functions (``_percent_enc``, ``_fleiss_enc``, ``_kripp_enc``; only alpha
    calls a library); mean pairwise Cohen from the vectorised form at unit weights, equal to
    ``mean_pairwise_cohen`` (tested) and computed for all rater pairs at once. CIs: percentile
    bootstrap over the block's items, with the resamples ``w`` (drawn from ``seed`` if not given).
    """
    enc = _pairable(enc_all)
    block: dict[str, Any] = {
        "n_items": len(enc.items),
        "n_items_dropped": len(enc_all.items) - len(enc.items),
        "n_raters": len(enc.raters),
        "n_labels": int((enc.codes != MISSING).sum()),
    }
    names = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "mean_pairwise_cohen")
    if not enc.items:
        block.update({k: _empty_value() for k in names})
        return block
    if w is None:
        w = _weights(len(enc.items), n_boot, seed)
    ones = np.ones(len(enc.items))
    points = (
        _percent_enc(enc),
        _fleiss_enc(enc),
        _kripp_enc(enc),
        float(_mean_pairwise_weighted(enc, ones)),
    )
    publics = (percent_agreement, fleiss_kappa, krippendorff_alpha, mean_pairwise_cohen)
    for name, point, public in zip(names, points, publics, strict=True):
        block[name] = _value(point, _FAST[public](enc, w), alpha)
    return block


def _pairwise(enc: _Encoded, w: NDArray[np.float64], alpha: float) -> list[dict[str, Any]]:
    pairs, sums = _pair_sums(enc, w)
    boot = _cohen_from_sums(sums, len(enc.categories))
    out = []
    for p, (r1, r2) in enumerate(pairs):
        a, b = _pair_codes(enc, r1, r2)
        if len(a) == 0:
            continue
        lo, hi = metrics.percentile_ci(boot[:, p], alpha)
        out.append(
            {
                "rater_a": enc.raters[r1],
                "rater_b": enc.raters[r2],
                "n_items": len(a),
                "percent_agreement": float(np.mean(a == b)),
                "kappa": metrics.cohen_kappa(a, b),
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return out


def _per_annotator(enc: _Encoded, w: NDArray[np.float64], alpha: float) -> dict[str, Any]:
    """For each rater: agreement with the others on shared items, and kappa vs the others'
    majority label (items where the others have a strict majority)."""
    codes = enc.codes
    n_cat = len(enc.categories)
    labeled = codes != MISSING
    blocks = []  # per rater: [has, frac, cohen features...]; one matmul for all raters
    for r in range(len(enc.raters)):
        mine = codes[:, r]
        has = labeled[:, r]
        others = np.delete(codes, r, axis=1)
        n_others = (others != MISSING).sum(axis=1)
        same = (others == mine[:, None]).sum(axis=1)
        frac = np.where(has, same / np.maximum(n_others, 1), 0.0)
        # Others' strict majority (MISSING on a tie or when nobody else labeled the item).
        oc = np.stack([(others == c).sum(axis=1) for c in range(n_cat)], axis=1)
        top = oc.max(axis=1)
        unique_top = (oc == top[:, None]).sum(axis=1) == 1
        maj = np.where(has & unique_top & (top > 0), oc.argmax(axis=1), MISSING)
        feats = _cohen_features(mine, maj, n_cat)
        blocks.append(np.column_stack([has.astype(np.float64), frac, feats]))
    n_f = blocks[0].shape[1] if blocks else 0
    all_feats = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(enc.items), 0))
    point_sums = all_feats.sum(axis=0)
    boot_sums = w @ all_feats
    out: dict[str, Any] = {}
    for r, rater in enumerate(enc.raters):
        sl = slice(r * n_f, (r + 1) * n_f)
        ps, bs = point_sums[sl], boot_sums[:, sl]
        n_vs = int(ps[2])
        out[rater] = {
            "n_items": int(ps[0]),
            "agreement_with_others": _value(
                float(_div(ps[1], ps[0])), _div(bs[:, 1], bs[:, 0]), alpha
            ),
            "n_items_vs_majority": n_vs,
            "kappa_vs_majority_of_others": _value(
                float(_cohen_from_sums(ps[2:], n_cat)), _cohen_from_sums(bs[:, 2:], n_cat), alpha
            )
            if n_vs
            else _empty_value(),
        }
    return out


def agreement_report(
    rows: Sequence[LabelRow],
    item_groups: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """All agreement numbers for a set of labels, JSON-serialisable (NaN -> ``None``).

    Layout::

        {"n_rows", "n_items_total", "n_items_dropped", "categories", "n_boot", "seed", "alpha",
         "overall": BLOCK,
         "per_group": {group: BLOCK},           # {} without item_groups
         "pairwise": [{"rater_a", "rater_b", "n_items", "percent_agreement",
                       "kappa", "ci_low", "ci_high"}],
         "per_annotator": {rater: {"n_items", "agreement_with_others": VALUE,
                                   "n_items_vs_majority", "kappa_vs_majority_of_others": VALUE}}}
        BLOCK = {"n_items", "n_items_dropped", "n_raters", "n_labels",  # on pairable items
                 "percent_agreement": VALUE, "fleiss_kappa": VALUE,
                 "krippendorff_alpha": VALUE, "mean_pairwise_cohen": VALUE}
        VALUE = {"value": float | None, "ci": [low | None, high | None]}

    Only items with >= 2 raters count (``n_items``); ``n_items_dropped`` counts the others.
    With no pairable items the values are ``None`` rather than an error, so a dashboard can show
    "not enough overlap yet"; invalid rows still raise ``InputError``.

    Per annotator (pairable items only): ``n_items`` they labeled; ``agreement_with_others`` =
    mean over their items of the share of the *other* raters of that item who chose the same
    label; ``kappa_vs_majority_of_others`` = Cohen's kappa between their label and the other
    raters' strict-majority label, on the ``n_items_vs_majority`` items where the others have one
    (with two raters per item that is simply the other rater's label).

    Every CI is a percentile bootstrap over items with the same ``n_boot`` resamples from
    ``seed`` (per group: resamples of that group's items). ``item_groups`` maps item id to a
    group (e.g. benchmark); every item must have one.
    """
    metrics.check_alpha(alpha)
    rows = list(rows)
    enc_all = _encode(rows)
    enc = _pairable(enc_all)
    # One set of resamples for the overall block, the pairs and the annotators.
    w = _weights(max(len(enc.items), 1), n_boot, seed)[:, : len(enc.items)]
    report: dict[str, Any] = {
        "n_rows": len(rows),
        "n_items_total": len(enc_all.items),
        "n_items_dropped": len(enc_all.items) - len(enc.items),
        "categories": list(enc_all.categories),
        "n_boot": int(n_boot),
        "seed": int(seed),
        "alpha": float(alpha),
        "overall": _block(enc_all, n_boot, seed, alpha, w=w),
        "per_group": {},
        "pairwise": [],
        "per_annotator": {},
    }
    if item_groups is not None:
        missing = [i for i in enc_all.items if i not in item_groups]
        if missing:
            raise InputError(
                f"{len(missing)} item(s) have no group in item_groups, e.g. {missing[0]!r}; "
                "map every labeled item to its group (benchmark)"
            )
        groups = np.array([str(item_groups[i]) for i in enc_all.items], dtype=object)
        for g in sorted(set(groups.tolist())):
            report["per_group"][g] = _block(enc_all.subset(groups == g), n_boot, seed, alpha)
    if enc.items:
        report["pairwise"] = [metrics.finite(p) for p in _pairwise(enc, w, alpha)]
        report["per_annotator"] = _per_annotator(enc, w, alpha)
    return report
