"""A small store for release tests: 3 evaluation benchmarks (one restricted), a training pool
with planted duplicates of evaluation questions, a model with predictions, human labels on a
gold batch (majority, tie, adjudicated), imported benchmark tags (one on a gold item) and
the ids the model trained on; exact duplicates merged at ingest (aliases, one restricted),
adversarial and reasoning traces in `meta`, and a training row whose source is a local path."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from curation.ingest import ingest_paths
from curation.store import Store
from curation.store.annotations import Annotation, adjudicate, append
from curation.store.batches import BatchItem, create_batch
from curation.store.models import record_seen_ids

T0 = datetime(2026, 1, 2, 3, 4, 5)

VIGNETTE = (
    "A 45-year-old man presents with crushing substernal chest pain radiating to the left arm for two "
    "hours. ECG shows ST elevation in leads II, III and aVF. Which coronary artery is most likely occluded?"
)
CORONARY = {"A": "Right coronary artery", "B": "Left anterior descending artery",
            "C": "Left circumflex artery", "D": "Left main coronary artery"}


LOCAL_SOURCE = "/home/maintainer/private/pool_2026.jsonl"  # a local path: never in a release


def _q(qid: str, bench: str, split: str, question: str, options: dict[str, str], answer_idx: str = "A") -> dict[str, Any]:
    return {"id": qid, "dataset_name": bench, "split": split, "question": question, "options": options,
            "answer_idx": answer_idx, "answer": options[answer_idx], "source": "tests/release_fixture"}


def eval_rows() -> list[dict[str, Any]]:
    rows = [
        {**_q("medqa-000001", "medqa", "test", VIGNETTE, CORONARY),
         "adversarial_trace_0": "Synthetic misleading trace: think of the left main.", "adversarial_trace_2": "Trace two."},
        _q("medqa-000002", "medqa", "test", "Which enzyme is deficient in classic phenylketonuria?",
           {"A": "Phenylalanine hydroxylase", "B": "Tyrosinase", "C": "Homogentisate oxidase", "D": "Fumarylacetoacetase"}),
        _q("medqa-000003", "medqa", "test", "A 6-year-old boy has a sore throat and a sandpaper-like rash. Which organism is responsible?",
           {"A": "Streptococcus pyogenes", "B": "Staphylococcus aureus", "C": "Measles virus", "D": "Parvovirus B19"}),
        _q("medmcqa-000010", "medmcqa", "test", "Which one of the following drugs are not used in hea failure?",
           {"A": "Metoprolol", "B": "Nesiritide", "C": "Trimetazidine", "D": "Sacubitril"}, "C"),
        _q("medmcqa-000011", "medmcqa", "test", "The function of a sprue is to",
           {"A": "Form an opening for molten metal to enter the mold", "B": "Help polish cast restorations",
            "C": "Eliminate air bubbles on the wax pattern", "D": "Reproduce fine detail"}),
        _q("medmcqa-000012", "medmcqa", "test", "The frontal paranasal sinus drains into the:",
           {"A": "Superior meatus", "B": "Middle meatus", "C": "Inferior meatus", "D": "Spheno-ethmoidal recess"}, "B"),
        _q("gpqa_diamond-000001", "gpqa_diamond", "test", "Restricted question text that must not be shipped?",
           {"A": "one", "B": "two", "C": "three", "D": "four"}),
        # a validation-split evaluation question: decontamination must check it too
        _q("pubmedqa-val-1", "pubmedqa", "validation", "Does daily aspirin reduce the risk of colorectal adenoma recurrence?",
           {"A": "yes", "B": "no", "C": "maybe"}),
    ]
    # exact duplicates under other ids: merged at ingest, published in the `aliases` config
    rows.append({**rows[1], "id": "medqa-alias-2"})
    rows.append({**rows[6], "id": "gpqa_diamond-alias-1"})
    return rows


def train_rows() -> list[dict[str, Any]]:
    return [
        # planted exact duplicate: options reordered, case/whitespace/punctuation changed
        _q("medmcqa-900001", "medmcqa", "train", "  the FUNCTION of a sprue   is to:\n",
           {"A": "Reproduce fine detail", "B": "Eliminate air bubbles on the wax pattern.",
            "C": "help polish cast restorations", "D": "Form an opening for molten metal to enter the mold"}, "D"),
        # planted near duplicate: reworded stem, options reordered
        _q("medmcqa-900002", "medmcqa", "train", "Which of the following is not used in hea failure?",
           {"A": "Metoprolol", "B": "Trimetazidine", "C": "Sacubitril", "D": "Nesiritide"}, "B"),
        # planted near duplicate of a long vignette, a few words changed
        _q("medmcqa-900003", "medmcqa", "train", VIGNETTE.replace("crushing", "severe").replace("occluded", "blocked"),
           {"A": "Left circumflex artery", "B": "Right coronary artery", "C": "Left main coronary artery",
            "D": "Left anterior descending artery"}, "B"),
        # near duplicate of the validation question
        _q("pubmedqa-900004", "pubmedqa", "train", "Does daily aspirin reduce the risk of colorectal adenoma recurrence ?",
           {"A": "yes", "B": "no", "C": "maybe"}),
        # genuinely different questions (the first shares the sinus options): kept
        {**_q("medmcqa-900005", "medmcqa", "train", "The maxillary sinus drains into the",
              {"A": "Middle meatus", "B": "Inferior meatus", "C": "Superior meatus", "D": "Sphenoethmoidal recess"}),
         "source": LOCAL_SOURCE, "reasoning": "Synthetic trace: the maxillary ostium opens into the middle meatus."},
        _q("medmcqa-900006", "medmcqa", "train", "Deficiency of which vitamin causes scurvy?",
           {"A": "Vitamin A", "B": "Vitamin C", "C": "Vitamin D", "D": "Vitamin K"}, "B"),
        _q("medmcqa-900007", "medmcqa", "train", "Drug of choice for absence seizures in children is",
           {"A": "Ethosuximide", "B": "Phenytoin", "C": "Carbamazepine", "D": "Phenobarbital"}),
        _q("pubmedqa-900008", "pubmedqa", "train", "Is obesity associated with worse outcomes after knee replacement surgery?",
           {"A": "yes", "B": "no", "C": "maybe"}),
        # below the reasoning threshold: never a candidate
        _q("medmcqa-900009", "medmcqa", "train", "Which nerve supplies the deltoid muscle?",
           {"A": "Axillary nerve", "B": "Radial nerve", "C": "Musculocutaneous nerve", "D": "Ulnar nerve"}),
        # restricted benchmark training row: excluded by default
        _q("gpqa_diamond-900010", "gpqa_diamond", "train", "Restricted training question about quantum chemistry?",
           {"A": "one", "B": "two", "C": "three", "D": "four"}),
    ]


# reasoning_prob per question (model m-test, threshold 0.5)
PROBS = {
    "medqa-000001": 0.91, "medqa-000002": 0.12, "medqa-000003": 0.55,
    "medmcqa-000010": 0.30, "medmcqa-000011": 0.05, "medmcqa-000012": 0.20,
    "gpqa_diamond-000001": 0.80, "pubmedqa-val-1": 0.70,
    "medmcqa-900001": 0.60, "medmcqa-900002": 0.70, "medmcqa-900003": 0.95, "pubmedqa-900004": 0.65,
    "medmcqa-900005": 0.81, "medmcqa-900006": 0.52, "medmcqa-900007": 0.77, "pubmedqa-900008": 0.66,
    "medmcqa-900009": 0.10, "gpqa_diamond-900010": 0.99,
}


def build_store(tmp: Path, db: str | None = None) -> Store:
    """The fixture store in `tmp` (a DuckDB file), or in the store `db` names (a PostgreSQL URL)."""
    store = Store(db or tmp / "release.duckdb")
    src = tmp / "fixture.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in eval_rows() + train_rows()), encoding="utf-8")
    ingest_paths(store, [src])

    def fill(con: Any) -> None:
        con.execute(
            "INSERT INTO models (version, base_model, kind, threshold, n_train, train_source, created_at) "
            "VALUES ('m-old', 'tiny-bert', 'transformer', 0.5, 10, 'gold', ?), "
            "('m-test', 'tiny-bert', 'transformer', 0.5, 40, 'human labels', ?)",
            [T0, T0 + timedelta(hours=1)],
        )
        con.executemany(
            "INSERT INTO prediction_rows VALUES (?,?,?,?,?,?)",
            [["m-test", q, p, p >= 0.5, 0.5, T0] for q, p in PROBS.items()]
            + [["m-old", q, 0.5, True, 0.5, T0] for q in PROBS],
        )
        gold = ["medqa-000001", "medqa-000002", "medqa-000003", "medmcqa-000010", "gpqa_diamond-000001"]
        create_batch(con, batch_id="gold-1", kind="gold", items=[BatchItem(q) for q in gold], overlap=3,
                     show_suggestions=False, created_at=T0)
        rows = []
        labels = {
            "medqa-000001": ["reasoning", "reasoning", "knowledge"],   # majority reasoning, 2/3
            "medqa-000002": ["knowledge", "knowledge", "knowledge"],   # unanimous
            "medqa-000003": ["reasoning", "knowledge"],                # tie -> adjudicated below
            "medmcqa-000010": ["reasoning", "knowledge"],              # tie, not adjudicated
            "gpqa_diamond-000001": ["reasoning", "reasoning"],
        }
        for q, labs in labels.items():
            for k, lab in enumerate(labs):
                rows.append(Annotation(q, ["zoe", "adam", "mia"][k], "label", lab, "app", T0 + timedelta(minutes=k),
                                       event_id=f"{q}-{k}", guidelines_version="1.0", batch_id="gold-1"))
        # a later retract removes mia's label on medqa-000002 (append-only history)
        rows.append(Annotation("medqa-000002", "mia", "retract", None, "app", T0 + timedelta(hours=2), event_id="r1"))
        # imported benchmark-author tags: one outside the gold set, one on a gold item that
        # disagrees with the people (a reference: it must not count as a rater or a vote)
        rows.append(Annotation("medmcqa-000012", "import:authors", "label", "knowledge", "import", T0, event_id="imp1"))
        rows.append(Annotation("medqa-000002", "import:authors", "label", "reasoning", "import", T0, event_id="imp2"))
        append(con, rows)
        # the model trained on one gold item: its figure must leave it out (no leakage)
        record_seen_ids(con, "m-test", {"train": ["medqa-000001", "medmcqa-900006"], "validation": ["medmcqa-000011"]})
        adjudicate(con, question_id="medqa-000003", label="reasoning", maintainer="boss", note=None,
                   created_at=T0 + timedelta(hours=3))

    store.run(fill)
    return store
