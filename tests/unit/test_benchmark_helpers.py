"""The pure helpers of benchmarks/classifier_quality.py and benchmarks/active_learning.py."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import active_learning as al  # noqa: E402
from benchmarks import classifier_quality as cq  # noqa: E402
from curation import active, metrics  # noqa: E402

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("e", [0.0, 0.05, 0.2, 0.4])
def test_flip_rate_inverts_the_pair_disagreement(e: float) -> None:
    assert cq.flip_rate(2 * e * (1 - e)) == pytest.approx(e)


def test_flip_rate_has_no_answer_at_or_above_one_half() -> None:
    assert math.isnan(cq.flip_rate(0.5))
    assert math.isnan(cq.flip_rate(0.9))


def test_noise_ceiling_matches_a_perfect_model_against_flipped_labels() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random(400_000) < 0.7).astype(int)
    e = 0.1
    labels = np.where(rng.random(len(truth)) < e, 1 - truth, truth)
    got = cq.noise_ceiling(e, float(labels.mean()))
    assert got["kappa"] == pytest.approx(metrics.cohen_kappa(labels, truth), abs=0.005)
    assert got["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy(labels, truth), abs=0.005)
    assert got["accuracy"] == pytest.approx(float(np.mean(labels == truth)), abs=0.005)


def test_noise_ceiling_without_noise_is_perfect() -> None:
    assert cq.noise_ceiling(0.0, 0.76) == pytest.approx({"accuracy": 1.0, "balanced_accuracy": 1.0, "kappa": 1.0})


def test_noise_ceiling_refuses_a_flip_rate_the_prevalence_rules_out() -> None:
    # flipping at 0.35 cannot leave 76 % of labels in one class (at most 65 % would be)
    assert all(math.isnan(v) for v in cq.noise_ceiling(0.35, 0.76).values())
    assert all(math.isnan(v) for v in cq.noise_ceiling(0.5, 0.5).values())


def test_disattenuated() -> None:
    assert cq.disattenuated(0.45, 0.81) == pytest.approx(0.5)
    assert math.isnan(cq.disattenuated(0.4, 0.0))


def test_near_duplicate_pairs_counts_pairs_above_the_threshold() -> None:
    y = np.array([1, 1, 0, 0])
    sim = np.zeros((4, 4))
    sim[0, 1] = sim[1, 0] = 0.95  # same label
    sim[1, 2] = sim[2, 1] = 0.92  # different labels
    sim[2, 3] = sim[3, 2] = 0.50  # below the threshold
    r = cq.near_duplicate_pairs(sim, y, 0.9)
    assert (r["pairs"], r["different_labels"], r["rate"], r["questions"]) == (2, 1, 0.5, 3)
    assert r["rate_ci95"] == list(metrics.wilson_ci(1, 2))
    assert r["random_pair_rate"] == pytest.approx(0.5)
    assert cq.near_duplicate_pairs(sim, y, 0.99)["rate"] is None


def test_aulc_is_the_mean_height_of_the_curve() -> None:
    assert al.aulc([25, 50, 400], [0.7, 0.7, 0.7], 25, 400) == pytest.approx(0.7)
    # linear from 0.5 at 0 to 0.9 at 400: mean over [0, 400] is 0.7; points outside are ignored
    assert al.aulc([0, 200, 400, 800], [0.5, 0.7, 0.9, 0.1], 0, 400) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="must include"):
        al.aulc([50, 400], [0.5, 0.6], 25, 400)


def test_first_reach_first_and_sustained() -> None:
    budgets, values = [25, 50, 75, 100], [0.6, 0.72, 0.69, 0.71]
    assert al.first_reach(budgets, values, 0.7) == 50
    assert al.first_reach(budgets, values, 0.7, sustained=True) == 100
    assert al.first_reach(budgets, values, 0.8) is None


def test_first_reach_agrees_with_the_simulation_result_on_one_seed() -> None:
    budgets, values = [25, 50, 75, 100], [0.6, 0.72, 0.69, 0.71]
    rows = [{"strategy": "random", "seed": 0, "n_labels": b, "balanced_accuracy": v} for b, v in zip(budgets, values, strict=True)]
    sim = active.SimulationResult(rows=rows, full_data={0: 0.74})
    for sustained in (False, True):
        assert al.first_reach(budgets, values, 0.95 * 0.74, sustained=sustained) == \
            sim.labels_to_reach(0.95, sustained=sustained)["random"]


def test_spread_counts_the_seeds_that_reached() -> None:
    assert al.spread([None, None]) == {"reached": 0, "of": 2}
    r = al.spread([100, None, 200, 300])
    assert (r["reached"], r["of"], r["median"], r["min"], r["max"]) == (3, 4, 200.0, 100.0, 300.0)
