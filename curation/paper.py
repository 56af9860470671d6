"""The reference figures of the paper this tool follows, defined once.

Thapa et al. (2025), *Disentangling Reasoning and Knowledge in Medical Large Language
Models*, arXiv:2505.11462. Cards, charts and CLI output quote these; none repeats the
numbers.
"""

from __future__ import annotations

REASONING_SHARE = 0.328
"""Share of the questions of the paper's 11 benchmarks that need reasoning."""
N_BENCHMARKS = 11
CLASSIFIER_AGREEMENT = 0.81
"""Agreement of the paper's PubMedBERT classifier with expert labels (held-out)."""
CITATION_KEY = "thapa2025disentangling"
ARXIV = "2505.11462"


def pct(x: float) -> str:
    """`0.328` -> `32.8 %` (the house style for shares in cards and tables)."""
    return f"{100 * x:.1f} %"
