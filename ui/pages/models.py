"""Models (maintainers): agreement with the gold set over rounds, the stopping rule, the
registered models, and label-noise flags for review. Question text is shown as plain text."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui.common import require_role

require_role("maintainer")

from curation import plots  # noqa: E402
from curation.services import annotate  # noqa: E402
from curation.services.learn import al_flags, al_status, list_models, n_training_labels  # noqa: E402  # noqa: E402
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
c1.metric("Model-gold kappa (latest round, gold never trained on)", "n/a" if status["model_kappa"] is None else f"{status['model_kappa']:.3f}")
c2.metric("Human-human kappa, lower 95 % bound", "n/a" if status["human_kappa_ci_low"] is None else f"{status['human_kappa_ci_low']:.3f}")
c3.metric("Predictions changed since last round", "n/a" if status["changed_fraction"] is None else f"{status['changed_fraction']:.2%}")
(st.success if status["stop"] else st.info)(status["message"])

# -- agreement over rounds --------------------------------------------------------------
rounds = [r for r in status["rounds"] if r["kappa"] is not None]


st.subheader("Agreement over rounds")
if rounds:
    st.altair_chart(plots.kappa_over_rounds(rounds), use_container_width=True)
else:
    st.caption("No store-trained model has been evaluated on an adjudicated gold set yet.")

table = pd.DataFrame([
    {"round": m.get("round"), "version": m["version"], "base": m["base_model"], "kind": m["kind"],
     "trained on": m.get("n_train"), "source": m.get("train_source"), "threshold": m.get("threshold"),
     "gold n": (m["metrics"].get("gold") or {}).get("n_gold"),
     "gold kappa": (m["metrics"].get("gold") or {}).get("kappa"),
     "gold balanced acc": (m["metrics"].get("gold") or {}).get("balanced_accuracy"),
     "created": m["created_at"]}
    for m in reversed(models)
])
st.dataframe(table, hide_index=True, use_container_width=True)

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
    flags = _flags(str(store.path), n_labels, min_conf)
    st.caption(f"{flags['n_flagged']} of {flags['n_labels']} labels flagged.")
    if flags["flags"]:
        fdf = pd.DataFrame(flags["flags"])[["id", "label", "model_label", "model_confidence", "origin", "n_votes"]]
        st.dataframe(fdf, hide_index=True, use_container_width=True)
        pick = st.selectbox("Show question", [f["id"] for f in flags["flags"]], key="flags_pick")
        if pick:
            q = annotate.questions(store, [pick]).get(pick)
            if q:
                show_plain(q["question"])
                show_plain("\n".join(f"{k}. {v}" for k, v in sorted(q["options"].items())))
