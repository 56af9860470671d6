"""Release builds: offline round trip through `datasets.load_dataset`, byte-identical rebuilds,
decontamination of planted duplicates, restricted benchmarks, labels, manifest and card."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from release_fixture import build_store
from typer.testing import CliRunner

from curation import release
from curation.cli import app
from curation.errors import InputError, NotFoundError, PermissionDenied
from curation.release.build import portable_command
from curation.release.shape import TRAIN_COLUMNS, portable_source
from curation.store import Store
from curation.store import releases as rstore

pytestmark = pytest.mark.integration

CMD = ["curation", "release", "build", "--version", "v1"]


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, dict[str, Any]]:
    """The fixture store built and released once per backend: every test here runs on a DuckDB
    file and on a real PostgreSQL server."""
    tmp = tmp_path_factory.mktemp("release")
    db = request.getfixturevalue("pg_server").new_database("rel") if request.param == "postgres" else None
    store = build_store(tmp, db)
    manifest = release.build_release(store, version="v1", out=tmp / "exports", command=CMD)
    return store, tmp / "exports" / "v1", manifest


def _rows(folder: Path, config: str) -> list[dict[str, Any]]:
    return release.read_config(folder, config).to_pylist()


def test_layout_counts_and_manifest(built: tuple[Store, Path, dict[str, Any]]) -> None:
    store, folder, manifest = built
    assert manifest["row_counts"] == {"medmcqa": 3, "medqa": 3, "all": 6, "gold": 4, "train_reasoning": 4,
                                      "biomed_r1": 4, "aliases": 1}
    assert manifest["configs"]["medqa"]["benchmark"] == "medqa"  # BioMed-R1-Eval's name = ours here
    assert manifest["schema_version"] == release.RELEASE_SCHEMA_VERSION
    assert manifest["model"]["version"] == "m-test"  # the newest model with predictions
    assert manifest["selection"]["excluded_benchmarks"] == ["gpqa"]
    assert manifest["requires_private"] is False
    assert manifest["command"] == CMD
    assert manifest["store"]["schema_version"] >= 1 and manifest["store"]["n_questions"] == 18
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == sorted([*manifest["files"], "manifest.json"])
    for rel, meta in manifest["files"].items():
        assert release.file_sha256(folder / rel) == meta["sha256"]
    release.verify_release(folder)
    recorded = store.run(lambda con: rstore.get_release(con, "v1"))
    assert recorded["content_hash"] == manifest["content_hash"]
    # no restricted text anywhere in the folder
    for p in folder.rglob("*"):
        if p.is_file():
            assert b"Restricted question text" not in p.read_bytes()
            assert b"Restricted training question" not in p.read_bytes()


def test_decontamination_removes_planted_duplicates(built: tuple[Store, Path, dict[str, Any]]) -> None:
    _, folder, manifest = built
    removed = {r["id"]: r for r in manifest["decontamination"]["removed"]}
    assert set(removed) == {"medmcqa-900001", "medmcqa-900002", "medmcqa-900003", "pubmedqa-900004"}
    assert removed["medmcqa-900001"] == {"id": "medmcqa-900001", "match_id": "medmcqa-000011", "kind": "exact", "jaccard": 1.0}
    assert removed["medmcqa-900002"]["match_id"] == "medmcqa-000010"
    assert removed["medmcqa-900003"]["match_id"] == "medqa-000001"
    assert removed["pubmedqa-900004"]["match_id"] == "pubmedqa-val-1"  # validation split checked too
    train = _rows(folder, "train_reasoning")
    assert [r["id"] for r in train] == ["medmcqa-900005", "medmcqa-900006", "medmcqa-900007", "pubmedqa-900008"]
    assert all(r["is_reasoning"] for r in train)
    # a Hub-style reference is kept; a local file path is cut to its base name
    assert {r["id"]: r["source"] for r in train} == {
        "medmcqa-900005": "pool_2026.jsonl", "medmcqa-900006": "tests/release_fixture",
        "medmcqa-900007": "tests/release_fixture", "pubmedqa-900008": "tests/release_fixture"}
    assert train[0]["reasoning"].startswith("Synthetic trace") and train[1]["reasoning"] is None
    # `biomed_r1`: the same rows with BioMed-R1-Train's fields, in its order
    r1 = release.read_config(folder, "biomed_r1")
    assert r1.column_names == ["id", "question", "answer", "options", "answer_idx", "dataset_name",
                               "reasoning_prob", "reasoning"]
    assert r1.column("id").to_pylist() == [r["id"] for r in train]
    assert r1.column("reasoning").to_pylist() == [r["reasoning"] for r in train]


def test_human_labels_and_predictions(built: tuple[Store, Path, dict[str, Any]]) -> None:
    _, folder, _ = built
    rows = {r["id"]: r for r in _rows(folder, "all")}
    assert list(rows) == sorted(rows, key=lambda i: (rows[i]["dataset_name"], i))  # ORDER BY dataset_name, id
    r = rows["medqa-000001"]
    assert (r["human_label"], r["n_annotators"], r["label_source"]) == ("reasoning", 3, "majority")
    assert r["annotator_agreement"] == pytest.approx(2 / 3)
    assert (r["reasoning_prob"], r["is_reasoning"], r["reasoning_threshold"], r["model_version"]) == (0.91, True, 0.5, "m-test")
    assert json.loads(r["options"])["A"] == "Right coronary artery" and r["answer"] == "Right coronary artery"
    r = rows["medqa-000002"]  # mia's label was retracted
    assert (r["human_label"], r["n_annotators"], r["annotator_agreement"]) == ("knowledge", 2, 1.0)
    r = rows["medqa-000003"]
    assert (r["human_label"], r["label_source"]) == ("reasoning", "adjudicated")
    r = rows["medmcqa-000010"]
    assert (r["human_label"], r["label_source"], r["n_annotators"]) == (None, "tie", 2)
    # a benchmark's own tag is a reference column, never a human label
    r = rows["medmcqa-000012"]
    assert (r["human_label"], r["label_source"], r["n_annotators"]) == (None, None, 0)
    assert (r["source_label"], r["source_label_origin"]) == ("knowledge", "authors")
    r = rows["medqa-000002"]  # people said knowledge (2 of them); the authors' tag says reasoning
    assert (r["human_label"], r["n_annotators"], r["source_label"]) == ("knowledge", 2, "reasoning")
    # the model trained on these rows: their reasoning_prob is in-sample, and the row says so
    assert {i for i, r in rows.items() if r["in_model_training"]} == {"medqa-000001", "medmcqa-000011"}
    assert (rows["medmcqa-000011"]["human_label"], rows["medmcqa-000011"]["n_annotators"]) == (None, 0)
    gold = {g["id"]: g for g in _rows(folder, "gold")}
    assert set(gold) == {"medqa-000001", "medqa-000002", "medqa-000003", "medmcqa-000010"}
    assert gold["medqa-000001"]["annotations"] == [
        {"annotator": "annotator_01", "label": "reasoning"},   # adam
        {"annotator": "annotator_02", "label": "knowledge"},   # mia
        {"annotator": "annotator_03", "label": "reasoning"},   # zoe
    ]
    for p in folder.rglob("*"):
        if p.is_file():
            assert b"zoe" not in p.read_bytes()  # annotators are pseudonymized


def test_card_content(built: tuple[Store, Path, dict[str, Any]]) -> None:
    _, folder, manifest = built
    text = (folder / "README.md").read_text(encoding="utf-8")
    from huggingface_hub import DatasetCard

    card = DatasetCard(text)
    data = card.data.to_dict()
    # every config of the manifest is in the card's YAML (else load_dataset cannot find it)
    assert [c["config_name"] for c in data["configs"]] == list(manifest["configs"])
    assert data["license"] == ["mit"]
    for key in ("task_categories", "size_categories", "annotations_creators", "source_datasets"):
        assert data[key]
    assert "32.8 %" in text and "Thapa" in text and "2505.11462" in text
    assert "Guidelines version: 1.0" in text
    assert "Left out of this release because their licences forbid redistribution: gpqa." in text
    assert "Percent agreement".lower() in text.lower()
    # model vs human: only gold items the model never trained on (medqa-000001 is left out)
    assert "Agreement with the human label on 2 gold items the model never trained on" in text
    assert "Left out of that figure: 1 gold item(s) the model trained on" in text
    assert "reasoning_share.png" in text and (folder / "reasoning_share.png").read_bytes()[:4] == b"\x89PNG"
    ma = manifest["model_agreement_on_gold"]
    assert (ma["n_items"], ma["n_excluded_in_training"], ma["in_sample"]["n_items"]) == (2, 1, 1)
    assert ma["held_out_only"] is True
    # benchmark tags are reported apart: human label vs tag on the two tagged questions
    prov = manifest["provenance"]
    assert prov["reference_sources"] == [{"name": "authors", "n_questions": 2}]
    assert prov["human_vs_reference"]["n_items"] == 1  # only medqa-000002 has both
    assert prov["human_vs_reference"]["percent_agreement"] == 0.0
    assert "`authors`: 2 questions tagged" in text
    assert "Restricted" not in text


EXPECTED_DTYPES = {
    "id": "string", "question": "string", "answer": "string", "options": "string", "answer_idx": "string",
    "dataset_name": "string", "adversarial_trace_0": "string", "adversarial_trace_1": "string",
    "adversarial_trace_2": "string", "reasoning_prob": "float64", "is_reasoning": "bool",
    "reasoning_threshold": "float64", "human_label": "string", "n_annotators": "int32",
    "annotator_agreement": "float64", "label_source": "string", "model_version": "string",
    "source_label": "string", "source_label_origin": "string", "in_model_training": "bool",
}


def test_load_dataset_offline_every_config(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    """`datasets.load_dataset(folder, config, split=...)` in a fresh offline process."""
    _, folder, manifest = built
    script = textwrap.dedent(
        """
        import json, sys
        from datasets import load_dataset
        folder, configs = sys.argv[1], json.loads(sys.argv[2])
        out = {}
        for name, split in configs.items():
            ds = load_dataset(folder, name, split=split)
            out[name] = {"rows": ds.num_rows, "dtypes": {k: str(v.dtype) if hasattr(v, "dtype") else repr(v)
                         for k, v in ds.features.items()}, "first": ds[0]["id"] if ds.num_rows else None}
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    configs = {k: v["split"] for k, v in manifest["configs"].items()}
    res = subprocess.run([sys.executable, "-c", script, str(folder), json.dumps(configs)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for name, info in out.items():
        assert info["rows"] == manifest["row_counts"][name]
        kind = manifest["configs"][name]["kind"]
        if kind in ("benchmark", "all", "gold") or name == "train_reasoning":
            assert list(info["dtypes"])[:len(release.EVAL_COLUMNS)] == list(release.EVAL_COLUMNS), name
            for col, dtype in EXPECTED_DTYPES.items():
                assert info["dtypes"][col] == dtype, (name, col, info["dtypes"][col])
    assert out["aliases"]["dtypes"] == {"alias_id": "string", "id": "string", "dataset_name": "string"}
    assert out["biomed_r1"]["dtypes"]["reasoning"] == "string"
    assert out["all"]["first"] == "medmcqa-000010"
    assert "annotations" in out["gold"]["dtypes"] and "source" in out["train_reasoning"]["dtypes"]


def test_rebuild_is_byte_identical(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    """The same version built into another folder, with the command line naming that folder
    and the store by absolute paths: every file, manifest.json included, is byte-identical."""
    store, folder, manifest = built
    cmd = [*CMD, "--out", str(tmp_path / "again"), f"--db={store.location}"]
    again = release.build_release(store, version="v1", out=tmp_path / "again", command=cmd)
    other = tmp_path / "again" / "v1"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(other).as_posix() for p in other.rglob("*") if p.is_file())
    for f in files:
        assert (folder / f).read_bytes() == (other / f).read_bytes(), f
    assert again["content_hash"] == manifest["content_hash"] and again["command"] == CMD
    for f in files:
        data = (other / f).read_bytes()
        for local in (str(tmp_path), str(folder.parent), str(store.home), "/home/maintainer"):
            assert local.encode() not in data, (f, local)


def test_portable_command() -> None:
    cmd = ["curation", "release", "build", "--version", "v1", "--out", "/srv/x", "--db=/home/me/s.duckdb",
           "--model", "m1", "--cap", "medmcqa=3", "--note=/home/me/notes.txt", "/abs/thing", "~/rel"]
    assert portable_command(cmd) == [
        "curation", "release", "build", "--version", "v1", "--model", "m1", "--cap", "medmcqa=3",
        "--note=notes.txt", "thing", "rel"]


def test_portable_source() -> None:
    cases = {
        "/home/me/data/pool.jsonl": "pool.jsonl", "~/d/f.parquet": "f.parquet", "data/x.csv": "x.csv",
        "C:\\Users\\me\\f.jsonl": "f.jsonl", "../x/folder": "folder", "/srv/datasets/folder": "folder",
        "org/name": "org/name", "org/name@abc123:data/x.json": "org/name@abc123:data/x.json",
    }
    assert {k: portable_source(k) for k in cases} == cases


def test_aliases_and_traces(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    """Merged duplicates are published (restricted ones only with the restricted data), at the
    path `curation evaluate` reads; traces come from `meta`, null when the source had none."""
    store, folder, manifest = built
    aliases = {k: v for k, v in manifest["configs"]["aliases"].items() if k != "features"}
    assert aliases == {"split": "test", "path": "data/aliases/test.parquet", "rows": 1, "kind": "aliases"}
    assert [f["name"] for f in manifest["configs"]["aliases"]["features"]] == ["alias_id", "id", "dataset_name"]
    assert _rows(folder, "aliases") == [{"alias_id": "medqa-alias-2", "id": "medqa-000002", "dataset_name": "medqa"}]
    rows = {r["id"]: r for r in _rows(folder, "medqa")}
    assert (rows["medqa-000001"]["adversarial_trace_0"], rows["medqa-000001"]["adversarial_trace_1"]) == (
        "Synthetic misleading trace: think of the left main.", None)
    assert rows["medqa-000001"]["adversarial_trace_2"] == "Trace two."
    assert rows["medqa-000002"]["adversarial_trace_0"] is None
    m = release.build_release(store, version="v-r", out=tmp_path, include_restricted=True, pool_config=True)
    assert [r["alias_id"] for r in _rows(tmp_path / "v-r", "aliases")] == ["gpqa_diamond-alias-1", "medqa-alias-2"]
    assert "GPQA_Medical_test" in m["configs"] and "gpqa" not in m["configs"]  # BioMed-R1-Eval's name
    assert m["configs"]["GPQA_Medical_test"]["benchmark"] == "gpqa"
    # m23k_clean: every decontaminated pool row (restricted ones too here), BioMed-R1-Train's fields
    pool = release.read_config(tmp_path / "v-r", "m23k_clean")
    assert pool.column_names == list(TRAIN_COLUMNS)
    assert sorted(pool.column("id").to_pylist()) == [
        "gpqa_diamond-900010", "medmcqa-900005", "medmcqa-900006", "medmcqa-900007", "medmcqa-900009", "pubmedqa-900008"]
    assert m["decontamination"]["pool"]["n_removed"] == 4 and m["selection"]["pool_config"] is True
    # the candidates' decontamination is the same with or without the pool
    assert m["decontamination"]["removed"] == manifest["decontamination"]["removed"]

def test_changed_store_cannot_reuse_a_version(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    store, _, _ = built
    with pytest.raises(InputError, match="already exists"):
        release.build_release(store, version="v1", out=built[1].parent, command=CMD)
    with pytest.raises(InputError, match="already built from other content"):
        release.build_release(store, version="v1", out=tmp_path / "x", command=CMD, threshold=0.9)
    assert not (tmp_path / "x" / "v1").exists()
    assert not [p for p in (tmp_path / "x").iterdir()]  # the temporary folder was removed


def test_threshold_caps_model_choice_and_restricted(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    store, _, _ = built
    m = release.build_release(store, version="v2", out=tmp_path, threshold=0.7, caps=["medmcqa=1"], command=None)
    train = _rows(tmp_path / "v2", "train_reasoning")
    # candidates >= 0.7: 900002, 900003 (removed), 900005 (0.81), 900007 (0.77); cap 1 keeps the highest
    assert [r["id"] for r in train] == ["medmcqa-900005"]
    assert m["selection"]["n_removed_by_caps"] == 1
    m3 = release.build_release(store, version="v3", out=tmp_path, model="m-old", include_restricted=True)
    assert m3["requires_private"] is True and m3["model"]["version"] == "m-old"
    assert "GPQA_Medical_test" in m3["configs"] and m3["row_counts"]["all"] == 7
    with pytest.raises(PermissionDenied, match="--private"):
        release.publish_release(store, tmp_path / "v3", repo_id="org/x", private=False, dry_run=True)
    with pytest.raises(NotFoundError):
        release.build_release(store, version="v4", out=tmp_path, model="nope")
    with pytest.raises(InputError, match="--cap"):
        release.build_release(store, version="v4", out=tmp_path, caps=["medmcqa"])
    with pytest.raises(InputError, match="not valid"):
        release.build_release(store, version="../evil", out=tmp_path)


def test_tampered_release_is_refused(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    store, folder, _ = built
    import shutil

    copy = tmp_path / "v1"
    shutil.copytree(folder, copy)
    (copy / "data" / "all" / "test.parquet").write_bytes(b"tampered")
    (copy / "extra.txt").write_text("x")
    with pytest.raises(InputError, match="sha256 differs") as exc:
        release.publish_release(store, copy, repo_id="org/x", dry_run=True)
    assert "extra.txt: not listed" in str(exc.value)


def test_cli_build_and_list(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["release", "build", "--version", "v9", "--out", str(tmp_path / "ex"),
                              "--db", store.location, "--pool-config"])
    assert res.exit_code == 0, res.output
    assert "load_dataset(" in res.output and "train_reasoning" in res.output and "m23k_clean" in res.output
    assert pq.read_table(tmp_path / "ex" / "v9" / "data" / "all" / "test.parquet").num_rows == 6
    manifest = release.read_manifest(tmp_path / "ex" / "v9")
    assert str(tmp_path) not in json.dumps(manifest["command"]) and "--pool-config" in manifest["command"]
    res = runner.invoke(app, ["release", "list", "--db", store.location, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["version"] == "v9"
    res = runner.invoke(app, ["release", "build", "--version", "v9", "--out", str(tmp_path / "ex"),
                              "--db", store.location])
    assert res.exit_code == 2 and "already exists" in res.output
