"""`curation release diff`: two releases built from one store, before and after labels, a
question and the classifier changed, give exactly the changed ids; `previous_release`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from release_fixture import PROBS, T0, build_store
from typer.testing import CliRunner

from curation import release
from curation.cli import app
from curation.ingest import ingest_paths
from curation.release.diff import diff_releases, previous_release
from curation.store import Store
from curation.store.annotations import Annotation, adjudicate, append

pytestmark = pytest.mark.integration

NEW_Q = {"id": "medqa-000004", "dataset_name": "medqa", "split": "test",
         "question": "A 30-year-old woman has heat intolerance, weight loss and a diffuse goitre with a bruit. "
                     "Which antibody is most likely present?",
         "options": {"A": "TSH receptor antibody", "B": "Anti-thyroid peroxidase", "C": "Anti-thyroglobulin",
                     "D": "Anti-centromere"}, "answer_idx": "A", "answer": "TSH receptor antibody",
         "source": "tests/diff"}


def _change_store(store: Store, tmp: Path) -> None:
    """Between v1 and v2: an adjudication, a new label, a retract, a new question, a new model."""
    src = tmp / "new.jsonl"
    src.write_text(json.dumps(NEW_Q) + "\n", encoding="utf-8")
    ingest_paths(store, [src])
    t = T0 + timedelta(days=1)

    def work(con: duckdb.DuckDBPyConnection) -> None:
        # tie -> adjudicated knowledge: human_label and label_source change, n_annotators does not
        adjudicate(con, question_id="medmcqa-000010", label="knowledge", maintainer="boss", note=None, created_at=t)
        append(con, [
            # first person's label on a question only the benchmark tagged: all three change
            Annotation("medmcqa-000012", "zoe", "label", "knowledge", "app", t, event_id="d1", guidelines_version="1.0"),
            # adam retracts on medqa-000001: 2-1 majority becomes a 1-1 tie
            Annotation("medqa-000001", "adam", "retract", None, "app", t, event_id="d2"),
        ])
        # a newer model with a higher threshold: only probabilities in [0.5, 0.6) flip
        con.execute("INSERT INTO models (version, base_model, kind, threshold, n_train, train_source, created_at) "
                    "VALUES ('m-new', 'tiny-bert', 'transformer', 0.6, 50, 'human labels', ?)", [t])
        probs = {**PROBS, NEW_Q["id"]: 0.2}
        con.executemany("INSERT INTO prediction_rows VALUES (?,?,?,?,?,?)",
                        [["m-new", q, p, p >= 0.6, 0.6, t] for q, p in probs.items()])

    store.run(work)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("diff")
    store = build_store(tmp)
    out = tmp / "exports"
    m1 = release.build_release(store, version="v1.0", out=out, command=["curation"])
    _change_store(store, tmp)
    m2 = release.build_release(store, version="v1.1", out=out, command=["curation"])
    return out / "v1.0", out / "v1.1", dict(m1), dict(m2)


def _kind(manifest: dict[str, Any], kind: str) -> list[str]:
    return [c for c, e in manifest["configs"].items() if e["kind"] == kind]


def test_diff_reports_exactly_the_changed_rows(releases: tuple[Path, Path, dict[str, Any], dict[str, Any]]) -> None:
    old, new, m1, m2 = releases
    d = diff_releases(old, new)
    assert (d["old"]["version"], d["new"]["version"]) == ("v1.0", "v1.1")
    # rows: the new question enters its benchmark's config and the all-benchmark one
    all_cfg = _kind(m2, "all")[0]
    medqa_cfg = next(c for c in _kind(m2, "benchmark") if "medqa" in c.lower() and "mcqa" not in c.lower())
    for cfg in (all_cfg, medqa_cfg):
        c = d["configs"][cfg]
        assert (c["status"], c["added"], c["removed"], c["added_ids"], c["removed_ids"]) == (
            "both", 1, 0, ["medqa-000004"], []), cfg
        assert c["rows_new"] == c["rows_old"] + 1
    for cfg in _kind(m2, "benchmark"):
        if cfg != medqa_cfg:
            assert (d["configs"][cfg]["added"], d["configs"][cfg]["removed"]) == (0, 0), cfg
    # training: scurvy (0.52) is reasoning-heavy at 0.5, not at 0.6
    for cfg in _kind(m2, "train"):
        if cfg in m1["configs"] and "id" in release.read_config(new, cfg).column_names:
            assert d["configs"][cfg]["removed_ids"] == ["medmcqa-900006"], cfg
            assert d["configs"][cfg]["added_ids"] == [], cfg
    # labels, on the questions in both releases
    fields = {f: v["ids"] for f, v in d["labels"]["fields"].items()}
    assert fields == {
        "human_label": ["medmcqa-000010", "medmcqa-000012", "medqa-000001"],
        "n_annotators": ["medmcqa-000012", "medqa-000001"],
        "label_source": ["medmcqa-000010", "medmcqa-000012", "medqa-000001"],
        "is_reasoning": ["medqa-000003"],  # 0.55: reasoning at 0.5, knowledge at 0.6
    }
    assert {f: v["n"] for f, v in d["labels"]["fields"].items()} == {
        "human_label": 3, "n_annotators": 2, "label_source": 3, "is_reasoning": 1}
    assert d["labels"]["by_benchmark"] == {
        "medmcqa": {"human_label": 2, "n_annotators": 1, "label_source": 2},
        "medqa": {"human_label": 1, "n_annotators": 1, "label_source": 1, "is_reasoning": 1},
    }
    assert d["labels"]["by_label_source"] == {
        "adjudicated": {"human_label": 1, "label_source": 1, "is_reasoning": 1},  # medmcqa-000010, medqa-000003
        "single": {"human_label": 1, "n_annotators": 1, "label_source": 1},
        "tie": {"human_label": 1, "n_annotators": 1, "label_source": 1},
    }
    assert d["model"] == {"changed": True, "old": {"version": "m-test", "threshold": 0.5},
                          "new": {"version": "m-new", "threshold": 0.6}}
    assert "/" not in json.dumps({k: d[k] for k in ("old", "new")})  # no local path


def test_first_n_and_same_release(releases: tuple[Path, Path, dict[str, Any], dict[str, Any]]) -> None:
    old, new, m1, _ = releases
    d = diff_releases(old, new, first_n=1)
    assert d["labels"]["fields"]["human_label"] == {"n": 3, "ids": ["medmcqa-000010"]}
    same = diff_releases(old, old)
    assert all(v["n"] == 0 for v in same["labels"]["fields"].values())
    assert same["labels"]["n_compared"] > 0 and same["model"]["changed"] is False
    assert all(c["status"] == "both" and c.get("added", 0) == 0 and c.get("removed", 0) == 0
               for c in same["configs"].values())
    # during a build the new manifest is not written yet: it can be passed in
    assert diff_releases(old, new, new_manifest=release.read_manifest(new)) == diff_releases(old, new)


def test_configs_only_on_one_side_are_reported(releases: tuple[Path, Path, dict[str, Any], dict[str, Any]],
                                               tmp_path: Path) -> None:
    """A config renamed between schema versions is 'only_old' / 'only_new', never matched."""
    import shutil

    old, new, _, m2 = releases
    renamed = tmp_path / "renamed"
    shutil.copytree(new, renamed)
    manifest = json.loads((renamed / "manifest.json").read_text(encoding="utf-8"))
    all_cfg = _kind(m2, "all")[0]
    manifest["configs"]["everything"] = manifest["configs"].pop(all_cfg)
    (renamed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    d = diff_releases(old, renamed)
    assert d["configs"][all_cfg]["status"] == "only_old" and "added" not in d["configs"][all_cfg]
    assert d["configs"]["everything"]["status"] == "only_new"
    assert d["configs"]["everything"]["rows_new"] == m2["configs"][all_cfg]["rows"]


def test_cli_diff(releases: tuple[Path, Path, dict[str, Any], dict[str, Any]]) -> None:
    old, new, _, _ = releases
    r = CliRunner().invoke(app, ["release", "diff", str(old), str(new), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == json.loads(json.dumps(diff_releases(old, new, first_n=10)))
    r = CliRunner().invoke(app, ["release", "diff", str(old), str(new)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "v1.0 -> v1.1" in r.output and "medqa-000004" in r.output and "m-new" in r.output
    r = CliRunner().invoke(app, ["release", "diff", str(old), str(old.parent / "nope")])
    assert r.exit_code != 0 and "not a release folder" in r.output


def test_previous_release(tmp_path: Path) -> None:
    for name in ("v0.9.1", "v0.10.0", "v0.2.0", "v1.0.0", ".v0.10.5.building-1-ab", "notes"):
        (tmp_path / name).mkdir()
        if name != "notes":
            (tmp_path / name / "manifest.json").write_text("{}", encoding="utf-8")
    assert previous_release(tmp_path, "v0.10.1") == tmp_path / "v0.10.0"  # 10 > 9: not a text sort
    assert previous_release(tmp_path, "v0.10.0") == tmp_path / "v0.9.1"
    assert previous_release(tmp_path, "v0.2.0") is None
    assert previous_release(tmp_path / "missing", "v1") is None
    other = tmp_path / "other"
    other.mkdir()
    for name in ("release_b7", "release_b10"):  # not PEP 440 versions: natural order
        (other / name).mkdir()
        (other / name / "manifest.json").write_text("{}", encoding="utf-8")
    assert previous_release(other, "release_b12") == other / "release_b10"
    assert previous_release(other, "release_b9") == other / "release_b7"


def test_card_changes_section(releases: tuple[Path, Path, dict[str, Any], dict[str, Any]]) -> None:
    from curation import card

    old, new, _, m2 = releases
    text = card.render_card({**m2, "changes": diff_releases(old, new, new_manifest=m2, first_n=10)})
    assert "## Changes since v1.0" in text
    assert "rows whose field changed: `human_label` 3, `n_annotators` 2, `label_source` 3, `is_reasoning` 1." in text
    assert "medmcqa (human_label 2, n_annotators 1, label_source 2)" in text
    assert "changed from `m-test` (threshold 0.5) to `m-new` (threshold 0.6)" in text


def test_each_build_records_its_changes_and_expertise(releases: tuple[Path, Path, dict[str, Any], dict[str, Any]]) -> None:
    """A build compares itself with the previous recorded version (the manifest's `changes`,
    the card's section) and records the annotators' expertise (the card's annotations_creators)."""
    old, new, m1, m2 = releases
    assert m1["changes"] is None  # the first release has nothing to compare with
    after = diff_releases(old, new, first_n=10, new_manifest=m2)
    # the same comparison, but for the new content hash (not known while the build compared)
    assert {k: v for k, v in m2["changes"].items() if k != "new"} == {k: v for k, v in after.items() if k != "new"}
    assert m2["changes"]["new"]["content_hash"] is None
    assert m2["changes"]["old"]["version"] == "v1.0"
    card_text = (new / "README.md").read_text(encoding="utf-8")
    assert "## Changes since v1.0" in card_text and "Changes since" not in (old / "README.md").read_text(encoding="utf-8")
    expertise = m2["annotation"]["annotator_expertise"]
    assert expertise and sum(expertise.values()) >= 1 and set(expertise) <= {"expert", "crowd", "student", "unknown"}
