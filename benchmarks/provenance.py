"""What the published figures say on the bundled sample, with people labeling a gold set.

Ingest the bundled sample (1,700 MedXpertQA questions carry their authors' own tags), draw
a gold set, let simulated annotators label everything the queue gives them, train the demo
classifier on the bundled MedXpertQA labels, build a release, and report:

- overlap: gold items, labels people gave, items that got fewer than K people;
- `curation agreement`: raters listed, items, Krippendorff's alpha;
- the card's "human-labeled" count and its classifier-vs-human figure (n, and how many of
  those items the classifier trained on).

Run against any checkout to compare before/after (the imports cover the earlier layout):
    PYTHONPATH=<checkout> .venv/bin/python benchmarks/provenance.py --out results/x.json
Annotators are simulated: each labels an item with its benchmark tag where it has one,
flipped with probability 0.25, else "reasoning" with probability 0.35 (seeded).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any


def _label(seed: int, annotator: str, qid: str, tag: str | None) -> str:
    rng = random.Random(int(hashlib.sha256(f"{seed}:{annotator}:{qid}".encode()).hexdigest()[:12], 16))
    if tag is not None:
        return tag if rng.random() > 0.25 else ("knowledge" if tag == "reasoning" else "reasoning")
    return "reasoning" if rng.random() < 0.35 else "knowledge"


def run(gold_size: int, overlap: int, n_annotators: int, seed: int) -> dict[str, Any]:
    import curation
    from curation.ingest import ingest_sample, sample_path
    from curation.release import build_release
    from curation.store import Store, users
    from curation.store import queue as q

    # the checkout on PYTHONPATH decides (an editable install elsewhere must not mix in)
    new_layout = (Path(curation.__file__).parent / "services").is_dir()
    if new_layout:
        from curation.services import annotate as queue_actions
        from curation.services.learn import classify, train_model
    else:
        queue_actions = q  # type: ignore[assignment]
        from curation.cli.model import classify, train_model  # type: ignore[no-redef]

    tmp = Path(tempfile.mkdtemp(prefix="provenance-"))
    store = Store(tmp / "store.duckdb")
    ingest_sample(store)
    names = [f"ann{i + 1}" for i in range(n_annotators)]
    for n in names:
        store.run(lambda con, n=n: users.add_user(con, n, role="annotator", password="pw-" + "x" * 12))
    gold = queue_actions.draw_gold(store, gold_size, overlap, seed=seed)
    tags = dict(store.run(lambda con: con.execute(
        "SELECT question_id, label FROM annotations WHERE source = 'import'").fetchall()))
    served: dict[str, int] = {n: 0 for n in names}
    active = list(names)
    tasks = {n: queue_actions.fetch_next(store, n)["task"] for n in names}
    while active:  # round-robin, like annotators working side by side
        for n in list(active):
            task = tasks[n]
            if task is None:
                active.remove(n)
                continue
            qid = task["question_id"]
            res = queue_actions.submit_and_next(store, n, qid, action="label", label=_label(seed, n, qid, tags.get(qid)),
                                    event_id=queue_actions.new_event_id())
            served[n] += 1
            tasks[n] = res["task"]
    gold_ids = set(store.run(lambda con: [r[0] for r in con.execute(
        "SELECT question_id FROM batch_items WHERE batch_id = ?", [gold["batch_id"]]).fetchall()]))
    people = store.run(lambda con: con.execute(
        "SELECT question_id, count(*) FROM annotations WHERE source = 'app' AND action = 'label' GROUP BY 1").fetchall())
    per_item = {qid: n for qid, n in people if qid in gold_ids}
    status = store.run(q.batch_status)[0]

    if new_layout:
        from curation.services.annotate import agreement_summary

        report = agreement_summary(store)
    else:
        import os

        from curation.cli.app_cmds import agreement_summary as old_summary  # type: ignore[attr-defined]

        os.environ["CURATION_DB"] = str(store.path)
        report = old_summary(str(store.path))
    raters = report.get("raters") or sorted(report["per_annotator"])

    model_dir = tmp / "model"
    train_model(str(sample_path("medxpertqa_labeled_dev.jsonl")), "tfidf", model_dir, db=str(store.path), seed=0)
    classify(model_dir, db=str(store.path))
    manifest = build_release(store, version="v-provenance", out=tmp / "exports")
    allrow = next(b for b in manifest["benchmarks"] if b["benchmark"] == "all")
    mxp = next((b for b in manifest["benchmarks"] if b["benchmark"] == "medxpertqa"), {})
    ma = manifest.get("model_agreement_on_gold") or {}
    card = (tmp / "exports" / "v-provenance" / "README.md").read_text(encoding="utf-8")
    return {
        "gold_items": len(gold_ids),
        "gold_medxpertqa_items": sum(1 for g in gold_ids if g.startswith("medxpertqa")),
        "overlap_k": overlap,
        "labels_by_people": sum(per_item.values()),
        "items_with_fewer_than_k_people": sum(1 for g in gold_ids if per_item.get(g, 0) < overlap),
        "items_served_per_annotator": served,
        "assignment_page_done_needed": [int(status["labels_done"]), int(status["labels_needed"])],
        "agreement_raters": raters,
        "agreement_n_items": report["overall"]["n_items"],
        "agreement_krippendorff_alpha": report["overall"]["krippendorff_alpha"]["value"],
        "card_human_labeled_all": allrow["n_human_labeled"],
        "card_human_labeled_medxpertqa": mxp.get("n_human_labeled"),
        "card_model_vs_human_n": ma.get("n_items"),
        "card_model_vs_human_percent": ma.get("percent_agreement"),
        "card_model_vs_human_excluded_in_training": ma.get("n_excluded_in_training"),
        "card_compares_in_sample_with_81": ("81" in card and ma.get("n_excluded_in_training") is None
                                            and any(g.startswith("medxpertqa") for g in gold_ids)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gold", type=int, default=20)
    ap.add_argument("--overlap", type=int, default=2)
    ap.add_argument("--annotators", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "provenance.json")
    args = ap.parse_args()
    res = run(args.gold, args.overlap, args.annotators, args.seed)
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
