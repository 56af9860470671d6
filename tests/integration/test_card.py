"""The dataset card: YAML that huggingface_hub's card classes accept, the Hub load snippet with
repo id and tag, no local path, `annotations_creators` from annotators' recorded expertise,
`dataset_info` that `datasets.load_dataset` accepts, and the sections a Hub card needs.
Also the accounts' expertise (store, migration, CLI)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from release_fixture import T0, build_store
from typer.testing import CliRunner

from curation import card, release
from curation.cli import app
from curation.errors import InputError, NotFoundError
from curation.ingest import ingest_paths
from curation.store import Store
from curation.store import annotations as astore
from curation.store import users as ustore
from curation.store.migrations import MIGRATIONS

pytestmark = pytest.mark.integration

# the Hub's vocabulary for annotations_creators (huggingface.co dataset card metadata)
HUB_CREATORS = {"crowdsourced", "expert-generated", "found", "machine-generated", "no-annotation", "other"}
LOCAL_DIR = "models/tiny-bert-local"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, dict[str, Any], Path]:
    """A release built in a temp dir, with a training row and a base model whose names are
    absolute paths under that temp dir (they must not reach the card)."""
    tmp = tmp_path_factory.mktemp("card")
    store = build_store(tmp)
    pool = tmp / "private" / "pool.jsonl"  # no `source` field: ingest records the file's path
    pool.parent.mkdir()
    pool.write_text(json.dumps({
        "id": "medmcqa-950001", "dataset_name": "medmcqa", "split": "train",
        "question": "Which vitamin deficiency causes pellagra in a patient on isoniazid therapy?",
        "options": {"A": "Niacin", "B": "Thiamine", "C": "Folate", "D": "Vitamin C"}, "answer_idx": "A",
        "answer": "Niacin"}) + "\n", encoding="utf-8")
    ingest_paths(store, [pool])

    def local_model(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("UPDATE models SET base_model = ? WHERE version = 'm-test'", [str(tmp / LOCAL_DIR)])
        con.execute("INSERT INTO prediction_rows VALUES ('m-test', 'medmcqa-950001', 0.9, true, 0.5, ?)", [T0])
        ustore.add_user(con, "zoe", role="annotator", password="password-zoe", expertise="expert")
        ustore.add_user(con, "adam", role="annotator", password="password-adam", expertise="expert")
        ustore.add_user(con, "mia", role="annotator", password="password-mia", expertise="crowd")

    store.run(local_model)
    manifest = release.build_release(store, version="v1", out=tmp / "exports", command=["curation"])
    return store, tmp / "exports" / "v1", dict(manifest), tmp


def _yaml(text: str) -> dict[str, Any]:
    from huggingface_hub import DatasetCard

    data: dict[str, Any] = DatasetCard(text).data.to_dict()
    return data


def _kind(manifest: dict[str, Any], kind: str) -> list[str]:
    return [c for c, e in manifest["configs"].items() if e["kind"] == kind]


def _with_expertise(manifest: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    m = copy.deepcopy(manifest)
    m["annotation"]["annotator_expertise"] = counts
    return m


def test_yaml_round_trips_through_the_card_data_classes(built: tuple[Store, Path, dict[str, Any], Path]) -> None:
    from huggingface_hub import DatasetCard, DatasetCardData

    _, folder, manifest, _ = built
    for text in ((folder / "README.md").read_text(encoding="utf-8"),
                 card.render_card(manifest, repo_id="org/medqa-reasoning", revision="v1")):
        c = DatasetCard(text)
        data = c.data.to_dict()
        again = DatasetCardData(**data)
        assert again.to_dict() == data
        assert DatasetCard(str(c)).data.to_dict() == data  # text -> card -> text -> card
        assert set(data["annotations_creators"]) <= HUB_CREATORS
        assert data["task_ids"] and data["task_categories"] and data["license"]
        names = [cfg["config_name"] for cfg in data["configs"]]
        assert names == [*_kind(manifest, "benchmark"), *(n for n in manifest["configs"] if n not in _kind(manifest, "benchmark"))]
        assert [d["config_name"] for d in data["dataset_info"]] == names
        for info in data["dataset_info"]:
            cfg = manifest["configs"][info["config_name"]]
            assert info["splits"] == [{"name": cfg["split"], "num_examples": cfg["rows"]}]
        assert [cfg for cfg in data["configs"] if cfg.get("default")] == [
            next(cfg for cfg in data["configs"] if cfg["config_name"] == _kind(manifest, "all")[0])]


def test_hub_snippet_names_the_repo_and_pins_the_tag(built: tuple[Store, Path, dict[str, Any], Path]) -> None:
    _, folder, manifest, _ = built
    all_cfg = _kind(manifest, "all")[0]
    hub = card.render_card(manifest, repo_id="org/medqa-reasoning", revision="v1")
    assert f'load_dataset("org/medqa-reasoning", "{all_cfg}", split="test", revision="v1")' in hub
    for train in _kind(manifest, "train")[:1]:
        assert f'load_dataset("org/medqa-reasoning", "{train}", split="train", revision="v1")' in hub
    assert "exports/" not in hub and "path/to/" not in hub
    assert "url     = {https://huggingface.co/datasets/org/medqa-reasoning}" in hub
    local = (folder / "README.md").read_text(encoding="utf-8")
    assert f'load_dataset("path/to/v1", "{all_cfg}", split="test")  #' in local
    assert card.render_card(manifest) == local  # deterministic: the same manifest, the same text


def test_no_local_path_in_the_card(built: tuple[Store, Path, dict[str, Any], Path]) -> None:
    _, folder, manifest, tmp = built
    sources = [r["source"] for r in manifest["train_sources"]]
    assert any(str(tmp) in s for s in sources) or any(s.endswith("pool.jsonl") for s in sources)
    for text in ((folder / "README.md").read_text(encoding="utf-8"),
                 card.render_card(manifest, repo_id="org/x", revision="v1")):
        assert str(tmp) not in text and str(tmp.resolve()) not in text
        assert "/home/" not in text and "private/" not in text
        assert "`pool.jsonl`" in text  # the file name stays: where the rows came from
        assert "tiny-bert-local" in text and LOCAL_DIR not in text


@pytest.mark.parametrize(("source", "shown"), [
    ("/home/me/data/pool.jsonl", "pool.jsonl"),
    ("C:\\Users\\me\\pool.csv", "pool.csv"),
    ("data/pool.jsonl", "pool.jsonl"),
    ("zou-lab/BioMed-R1-Train", "zou-lab/BioMed-R1-Train"),
    ("https://example.org/pool.jsonl", "https://example.org/pool.jsonl"),
    ("~/pool.jsonl", "pool.jsonl"),
])
def test_public_source(source: str, shown: str) -> None:
    assert card.public_source(source) == shown


def test_annotations_creators_follow_expertise(built: tuple[Store, Path, dict[str, Any], Path]) -> None:
    store, folder, manifest, _ = built
    # what the build records: expertise of the people whose labels are in the release
    people = store.run(lambda con: {r["annotator"] for r in astore.current_labels(con)})
    counts = card.expertise_counts(people, store.run(ustore.expertise_by_user))
    assert counts == {"crowd": 1, "expert": 2}
    if "annotator_expertise" in manifest["annotation"]:  # once the build records it
        assert manifest["annotation"]["annotator_expertise"] == counts
        assert _yaml((folder / "README.md").read_text(encoding="utf-8"))["annotations_creators"] == [
            "expert-generated", "crowdsourced", "found", "machine-generated"]
    cases = [
        ({"expert": 3}, ["expert-generated", "found", "machine-generated"]),
        ({"crowd": 2}, ["crowdsourced", "found", "machine-generated"]),
        ({"expert": 2, "crowd": 1}, ["expert-generated", "crowdsourced", "found", "machine-generated"]),
        ({"expert": 2, "unknown": 1}, ["expert-generated", "other", "found", "machine-generated"]),
        ({"student": 1}, ["other", "found", "machine-generated"]),
        ({}, ["found", "machine-generated"]),
    ]
    for given, expected in cases:
        m = _with_expertise(manifest, given)
        assert card.annotations_creators(m) == expected, given
        text = card.render_card(m)
        assert _yaml(text)["annotations_creators"] == expected
    bare = _with_expertise(manifest, {"expert": 1})
    bare["model"], bare["provenance"]["reference_sources"] = None, []
    assert _yaml(card.render_card(bare))["annotations_creators"] == ["expert-generated"]
    assert "2 expert, 1 crowd" not in card.render_card(bare)
    assert "1 crowd, 2 expert" in card.render_card(_with_expertise(manifest, counts))
    none = _with_expertise(manifest, {})
    none["model"], none["provenance"]["reference_sources"] = None, []
    assert _yaml(card.render_card(none))["annotations_creators"] == ["no-annotation"]
    old = copy.deepcopy(manifest)
    old["annotation"].pop("annotator_expertise", None)
    assert card.annotations_creators(old)[0] == "other"  # people labeled, expertise unknown
    assert "expertise (people whose labels are in this release): not recorded" in card.render_card(old)


def test_sections_a_hub_card_needs(built: tuple[Store, Path, dict[str, Any], Path]) -> None:
    _, folder, manifest, _ = built
    text = (folder / "README.md").read_text(encoding="utf-8")
    for heading in ("## Uses", "## Out-of-scope uses", "## Biases and limitations", "## Contact", "## Citation"):
        assert heading in text, heading
    assert "Not for clinical decisions" in text
    assert "cover sampling only, not classifier error" in text
    assert "released under CC-BY-4.0**, separately\nfrom the benchmarks' licences" in text
    assert card.DEFAULT_CONTACT in text
    # the source benchmarks' citations (medmcqa and medqa in the release, pubmedqa in training)
    for key in ("@inproceedings{pal2022medmcqa,", "@article{jin2021disease,", "@inproceedings{jin2019pubmedqa,",
                "@article{thapa2025disentangling,", "@misc{reasoning_knowledge_medqa_v1,"):
        assert key in text, key
    assert "version = {v1}" in text
    m = copy.deepcopy(manifest)
    m["contact"] = "data-team@example.org"
    assert "Questions, corrections, takedown requests: data-team@example.org." in card.render_card(m)


def test_citations_known_and_unknown() -> None:
    cites = card._citations(["MedXpertQA", "mmlu_health_biology", "GPQA_Medical_test", "hle_biomed",
                             "medbullets_op4", "medbullets_op5", "Lancet", "NEJM", "medqa", "medmcqa"])
    papers = {e["paper"]: e["names"] for e in cites["entries"]}
    assert papers["MedBullets"] == ["medbullets\\_op4", "medbullets\\_op5"]  # one entry per paper
    assert papers["MMLU-Pro"] == ["mmlu\\_health\\_biology"]  # MMLU-Pro's subset, not MMLU
    assert {"MedXpertQA", "GPQA", "Humanity's Last Exam", "MedQA", "MedMCQA"} <= set(papers)
    assert cites["missing"] == ["Lancet", "NEJM"]  # no invented citation
    text = "\n".join(e["bibtex"] for e in cites["entries"])
    for arxiv in ("2501.18362", "2406.01574", "2402.18060", "2501.14249"):
        assert arxiv in text
    assert card.contact_from("me@example.org") == "me@example.org"


def test_contact_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(card.CONTACT_ENV, " team@example.org ")
    assert card.contact_from() == "team@example.org"
    assert card.contact_from("") is None  # an explicit empty option: no contact recorded
    monkeypatch.delenv(card.CONTACT_ENV)
    assert card.contact_from() is None


def test_changes_section(built: tuple[Store, Path, dict[str, Any], Path]) -> None:
    _, folder, manifest, _ = built
    from curation.release.diff import diff_releases

    assert "## Changes since" not in card.render_card(manifest)
    m = copy.deepcopy(manifest)
    m["changes"] = diff_releases(folder, folder)
    m["changes"]["old"]["version"] = "v0.9"
    text = card.render_card(m)
    assert "## Changes since v0.9" in text and "Classifier: unchanged" in text
    assert f"| `{_kind(manifest, 'all')[0]}` | both | {manifest['configs'][_kind(manifest, 'all')[0]]['rows']} |" in text


def test_dataset_info_features_load_with_datasets(built: tuple[Store, Path, dict[str, Any], Path],
                                                  tmp_path: Path) -> None:
    """With features recorded in the manifest (`card.config_features`), the card's
    dataset_info is what `datasets` itself writes: every config still loads, offline."""
    _, folder, manifest, _ = built
    copy_dir = tmp_path / "v1"
    shutil.copytree(folder, copy_dir)
    m = copy.deepcopy(manifest)
    for entry in m["configs"].values():
        entry["features"] = card.config_features(copy_dir / entry["path"])
    all_cfg = _kind(m, "all")[0]
    assert {"name": "is_reasoning", "dtype": "bool"} in m["configs"][all_cfg]["features"]
    (copy_dir / "README.md").write_text(card.render_card(m), encoding="utf-8")
    info = {d["config_name"]: d for d in _yaml((copy_dir / "README.md").read_text(encoding="utf-8"))["dataset_info"]}
    assert info[all_cfg]["features"] == m["configs"][all_cfg]["features"]
    script = textwrap.dedent(
        """
        import json, sys
        from datasets import load_dataset
        folder, configs = sys.argv[1], json.loads(sys.argv[2])
        print(json.dumps({n: load_dataset(folder, n, split=s).num_rows for n, s in configs.items()}))
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    configs = {k: v["split"] for k, v in m["configs"].items()}
    res = subprocess.run([sys.executable, "-c", script, str(copy_dir), json.dumps(configs)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {k: v["rows"] for k, v in m["configs"].items()}


# -- accounts' expertise -------------------------------------------------------------------


def test_existing_users_get_unknown_expertise_on_migration(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMP NOT NULL)")
    for mig in MIGRATIONS:
        if mig.name == "annotator expertise per user":
            break
        for statement in mig.statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [mig.version, mig.name, T0])
    con.execute("INSERT INTO users (name, role, password_hash, disabled, created_at) "
                "VALUES ('old', 'annotator', 'x', false, ?)", [T0])
    con.close()
    store = Store(db)
    assert store.run(ustore.expertise_by_user) == {"old": "unknown"}
    store.run(lambda con: ustore.add_user(con, "new", role="annotator", password="password-new",
                                          expertise="student", created_at=T0 + timedelta(days=1)))
    store.run(lambda con: ustore.set_expertise(con, "old", "expert"))
    assert store.run(ustore.expertise_by_user) == {"new": "student", "old": "expert"}
    with pytest.raises(InputError, match="expertise 'guru' is not one of expert, crowd, student, unknown"):
        store.run(lambda con: ustore.set_expertise(con, "old", "guru"))
    with pytest.raises(NotFoundError, match="no user 'nobody'"):
        store.run(lambda con: ustore.set_expertise(con, "nobody", "expert"))


def test_cli_users_expertise(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    Store(db).run(lambda con: None)
    pw = tmp_path / "pw"
    pw.write_text("s3cret-pass\n")
    env = {"CURATION_DB": str(db)}

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    r = cli("users", "add", "ann1", "--expertise", "expert", "--password-file", str(pw))
    assert r.exit_code == 0 and "expertise expert" in r.output, r.output
    r = cli("users", "add", "ann2", "--password-file", str(pw))
    assert r.exit_code == 0, r.output
    r = cli("users", "add", "ann3", "--expertise", "doctor", "--password-file", str(pw))
    assert r.exit_code == 2 and "expertise 'doctor' is not one of" in r.output
    r = cli("users", "set-expertise", "ann2", "crowd")
    assert r.exit_code == 0, r.output
    r = cli("users", "set-expertise", "ghost", "crowd")
    assert r.exit_code != 0 and "no user 'ghost'" in r.output
    listed = json.loads(cli("users", "list", "--json").output)
    assert [(u["name"], u["expertise"]) for u in listed] == [("ann1", "expert"), ("ann2", "crowd")]
    assert ["ann2", "annotator", "crowd", "active"] in [line.split() for line in cli("users", "list").output.splitlines()]
