"""Models (maintainers): agreement with the gold set over rounds, the stopping rule, the
registered models, and label-noise flags for review. Question text is shown as plain text."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.common import require_role

require_role("maintainer")

from curation import plots  # noqa: E402
from curation.services import annotate  # noqa: E402
from curation.services.learn import al_flags, al_status, list_models, n_training_labels  # noqa: E402
from ui import widgets as w  # noqa: E402
from ui.common import get_store, show_plain  # noqa: E402

store = get_store()
st.title("Models and agreement with people")

status = al_status(store=store)
models = list_models(store)

if not models:
    st.info("No model yet. Train one with `curation train --labels store --model minilm --out models/round-1`.")
    st.stop()

# -- stopping rule ----------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
c1.metric("Model-gold kappa (latest round, gold never trained on)", w.num(status["model_kappa"]))
c2.metric("Human-human kappa, lower 95 % bound", w.num(status["human_kappa_ci_low"]))
c3.metric("Predictions changed since last round", w.pct(status["changed_fraction"], 2))
(st.success if status["stop"] else st.info)(status["message"])

# -- agreement over rounds --------------------------------------------------------------
rounds = [r for r in status["rounds"] if r["kappa"] is not None]

st.subheader("Agreement over rounds")
if rounds:
    st.altair_chart(plots.kappa_over_rounds(rounds), width="stretch")
    gold_n = [r.get("n_gold") for r in rounds]
    st.caption("Model vs the adjudicated gold set and human vs human on the same items, per round, "
               "each with its 95 % CI. Gold items per round: "
               + ", ".join(f"round {r['round']}: {w.n_items(r.get('n_gold'))}" for r in rounds) + ".")
    if (note := w.small_n_caption(gold_n)):
        st.caption(note)
else:
    st.caption("No store-trained model has been evaluated on an adjudicated gold set yet.")


def _gold(m: dict[str, Any], key: str) -> Any:
    return (m["metrics"].get("gold") or {}).get(key)


st.subheader("Registered models")
registered = [{**m, "gold_n": _gold(m, "n_gold"), "gold_kappa": _gold(m, "kappa"),
               "gold_bacc": _gold(m, "balanced_accuracy")} for m in reversed(models)]
w.show_table(w.table(registered, [
    ("round", "Round", w.text), ("version", "Version", w.text), ("base_model", "Base model", w.text),
    ("kind", "Kind", w.text), ("n_train", "Trained on (labels)", w.text),
    ("train_source", "Training labels from", w.text), ("threshold", "Threshold", w.num),
    ("gold_n", "Gold items", w.n_items), ("gold_kappa", "Gold kappa", w.num),
    ("gold_bacc", "Gold balanced accuracy", w.num), ("created_at", "Created", w.when),
]), key="models_table")

# -- label-noise flags ------------------------------------------------------------------
st.subheader("Label-noise flags")
st.caption("Human labels that a model trained on the other folds (5-fold, TF-IDF) contradicts with high confidence. "
           "Review them on the Adjudication page.")
min_conf = st.slider("Minimum model confidence", 0.6, 0.99, 0.8, 0.01, key="flags_min_conf")


@st.cache_data(show_spinner="Computing out-of-fold predictions...", max_entries=4, ttl=600)
def _flags(db: str, n_labels: int, min_conf: float) -> dict[str, Any]:
    return al_flags(store=store, model="tfidf", min_confidence=min_conf)


n_labels = n_training_labels(store)
if n_labels < 10:
    st.caption(f"{n_labels} labeled questions; flags need at least 10.")
else:
    flags = _flags(store.key, n_labels, min_conf)
    st.caption(f"{flags['n_flagged']} of {flags['n_labels']} labels flagged.")
    if flags["flags"]:
        w.show_table(w.table(flags["flags"], [
            ("id", "Question id", w.text), ("label", "Human label", w.text),
            ("model_label", "Model label", w.text), ("model_confidence", "Model confidence", w.num),
            ("origin", "Label origin", w.text), ("n_votes", "Votes", w.text),
        ]), key="flags_table")
        pick = st.selectbox("Show question", [f["id"] for f in flags["flags"]], key="flags_pick")
        if pick:
            q = annotate.questions(store, [pick]).get(pick)
            if q:
                show_plain(q["question"])
                show_plain("\n".join(f"{k}. {v}" for k, v in sorted(q["options"].items())))
