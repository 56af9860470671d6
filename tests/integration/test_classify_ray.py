"""`curation classify --engine ray` on a real local Ray cluster (one per module,
`ray.init(num_cpus=2)`): the same predictions as the single-process path for a tfidf model
and a tiny locally built BERT, on the store path (the `predictions` table) and on the
`--input` path, with 1 and 2 actors; rows back in input order when blocks finish out of
order; clear errors for a bad engine, a missing model folder (before Ray starts) and a
missing Ray install; a local cluster the command starts is shut down again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import modelkit
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from curation import model as M
from curation.cli import model as model_cli
from curation.ingest import ingest_paths
from curation.ray_scoring import collect
from curation.schema import format_for_model
from curation.store import Store, close_all
from curation.store import models as sm
from tests.conftest import write_jsonl

pytestmark = pytest.mark.integration

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
N = 240
_rows = modelkit.labeled_rows


_write = write_jsonl


def _app() -> typer.Typer:
    app = typer.Typer()
    model_cli.register(app)
    return app


def _cli(*args: str) -> str:
    res = CliRunner().invoke(_app(), ["classify", *args])
    assert res.exit_code == 0, res.output
    return res.output


# -- first, the checks that need no running cluster (a fresh process each) --------------
def test_missing_model_before_ray_then_a_local_cluster_started_and_stopped_then_no_ray(tmp_path: Path) -> None:
    """In a fresh process: a missing model folder fails before Ray starts; a command without
    --address starts a local cluster, scores like the local path and shuts it down; without
    Ray installed the error says how to get it."""
    m = M.train([format_for_model(r["question"], r["options"]) for r in _rows(120)], [r["label"] for r in _rows(120)],
                M.TrainConfig(base="tfidf")).save(tmp_path / "m")
    inp = _write(tmp_path / "in.jsonl", [{k: r[k] for k in ("id", "question", "options")} for r in _rows(50, 300)])
    script = textwrap.dedent(f"""
        import json, sys
        import ray
        from curation.errors import ConfigError, NotFoundError
        from curation.services.learn import classify
        try:
            classify({str(tmp_path / "nosuch")!r}, input={str(inp)!r}, engine="ray")
        except NotFoundError as exc:
            print("missing:", exc, "| ray started:", ray.is_initialized())
        res = classify({str(m)!r}, input={str(inp)!r}, engine="ray", actors=1, device="cpu")
        print("probs:", json.dumps([r["reasoning_prob"] for r in res["rows"]]))
        print("ray still up:", ray.is_initialized())
        sys.modules["ray"] = None  # as if `curation[ray]` were not installed
        sys.modules["ray.data"] = None
        try:
            classify({str(m)!r}, input={str(inp)!r}, engine="ray")
        except ConfigError as exc:
            print("no ray:", exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    lines = {x.split(":", 1)[0]: x.split(":", 1)[1].strip() for x in out.stdout.splitlines() if ":" in x}
    assert "no such model folder" in lines["missing"] and lines["missing"].endswith("ray started: False")
    local = M.load(m, device="cpu").predict_proba([format_for_model(r["question"], r["options"]) for r in _rows(50, 300)])
    np.testing.assert_allclose(json.loads(lines["probs"]), local, rtol=0, atol=1e-12)
    assert lines["ray still up"] == "False"
    assert 'pip install "curation[ray]"' in lines["no ray"] and "--engine ray" in lines["no ray"]


def test_bad_engine_and_ray_options_without_ray_are_clear_errors(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", [{k: r[k] for k in ("id", "question", "options")} for r in _rows(5)])
    for extra, says in ((["--engine", "nosuch"], "'nosuch' is not one of local, ray"),
                        (["--actors", "2"], "apply to --engine ray only"),
                        (["--address", "auto"], "apply to --engine ray only")):
        res = CliRunner().invoke(_app(), ["classify", "--model", str(tmp_path / "nosuch"), "--input", str(inp), *extra])
        assert res.exit_code == 2, res.output
        assert says in res.output, res.output


def test_collect_puts_rows_back_in_order_and_refuses_gaps() -> None:
    p = np.linspace(0.01, 0.99, 10)
    batches = [{"row": np.array(r), "prob": p[r]} for r in ([7, 8, 9], [0, 1, 2], [6, 3], [5, 4])]
    seen: list[int] = []
    np.testing.assert_array_equal(collect(batches, 10, lambda _s, done, _n: seen.append(done)), p)
    assert seen == [3, 6, 8, 10]
    with pytest.raises(RuntimeError, match="1 missing, 0 twice"):
        collect(batches[:3] + [{"row": np.array([4]), "prob": p[[4]]}], 10)
    with pytest.raises(RuntimeError, match="0 missing, 1 twice"):
        collect([*batches, {"row": np.array([4]), "prob": p[[4]]}], 10)


# -- on one running cluster -------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tfidf model and a tiny random BERT (2 layers, hidden 64, a WordPiece tokenizer
    trained on bundled text) saved as curation model folders."""
    root = tmp_path_factory.mktemp("models")
    texts = [format_for_model(r["question"], r["options"]) for r in _rows(200)]
    tfidf = M.train(texts, [r["label"] for r in _rows(200)], M.TrainConfig(base="tfidf")).save(root / "tfidf")
    fast, model = modelkit.tiny_bert(texts)
    # a steep calibration spreads the random head's logits over (0, 1): differences show
    info = M.ModelInfo("transformer", M.new_version("tiny-bert"), "tiny-bert", 0.5,
                       M.Calibrator("platt", 25.0, 0.0).to_dict(), 128)
    bert = M.TransformerClassifier(fast, model, info, M.select_device("cpu")).save(root / "bert")
    return {"tfidf": tfidf, "bert": bert}


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file holding N bundled questions, ingested the ordinary way (copied per test)."""
    root = tmp_path_factory.mktemp("store")
    ingest_paths(Store(root / "seed.duckdb"), [_write(root / "q.jsonl", _rows(N))])
    close_all()  # checkpointed: the file alone holds the questions
    return root / "seed.duckdb"


def _store_predictions(seed: Path, folder: Path, model_dir: Path, *extra: str) -> dict[str, float]:
    db = folder / "c.duckdb"
    shutil.copy(seed, db)
    out = json.loads(_cli("--model", str(model_dir), "--db", str(db), "--device", "cpu", "--json", *extra))
    assert out["written_to_store"] and out["n"] == N
    preds = Store(db).run(lambda con: sm.predictions(con, out["model_version"]))
    return {q: v["reasoning_prob"] for q, v in preds.items()}


@pytest.mark.parametrize(("kind", "store_actors", "input_actors"), [("tfidf", "1", "2"), ("bert", "2", "1")])
def test_ray_gives_the_local_predictions_on_the_store_and_input_paths(
    cluster: None, models: dict[str, Path], seeded_db: Path, tmp_path: Path, kind: str, store_actors: str,
    input_actors: str,
) -> None:
    """Each model, each path and each actor count once (pairwise: a Ray job costs seconds)."""
    model_dir = models[kind]
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = _store_predictions(seeded_db, tmp_path / "local", model_dir)
    assert len(local) == N and len(set(np.round(list(local.values()), 6))) > N // 2  # distinct numbers to compare
    got = _store_predictions(seeded_db, tmp_path / "ray", model_dir, "--engine", "ray", "--actors", store_actors)
    assert got.keys() == local.keys()
    np.testing.assert_allclose([got[q] for q in local], list(local.values()), rtol=0, atol=1e-6)

    inp = _write(tmp_path / "in.jsonl", [{k: r[k] for k in ("id", "question", "options")} for r in _rows(N)])
    for engine in ("local", "ray"):
        more = ("--engine", "ray", "--actors", input_actors) if engine == "ray" else ()
        _cli("--model", str(model_dir), "--input", str(inp), "--output", str(tmp_path / f"{engine}.jsonl"),
             "--device", "cpu", *more)
    ref, rows = ([json.loads(x) for x in (tmp_path / f"{e}.jsonl").read_text(encoding="utf-8").splitlines()]
                 for e in ("local", "ray"))
    assert [r["id"] for r in rows] == [r["id"] for r in ref] == [r["id"] for r in _rows(N)]  # input order
    np.testing.assert_allclose([r["reasoning_prob"] for r in rows], [r["reasoning_prob"] for r in ref], rtol=0, atol=1e-6)
    assert [r["is_reasoning"] for r in rows] == [r["is_reasoning"] for r in ref]
    assert ray.is_initialized()  # the caller's cluster is left running


def test_rows_come_back_in_input_order_when_blocks_finish_out_of_order(cluster: None, models: dict[str, Path]) -> None:
    """120 two-row blocks over 2 actors: Ray hands blocks back as they finish, not in input
    order (one run here: rows 2-3 before rows 0-1, rows 60-61 before 58-59); the result is in
    input order all the same. (The reordering itself, deterministically: `collect`, above.)"""
    from curation.ray_scoring import score

    texts = [format_for_model(r["question"], r["options"]) for r in _rows(N)]
    clf = M.load(models["bert"], device="cpu")
    assert not ray.data.DataContext.get_current().execution_options.preserve_order  # blocks arrive as they finish
    arrived: list[int] = []
    got = score(str(models["bert"]), texts, kind="transformer", actors=2, device="cpu", rows_per_block=2,
                progress=lambda _s, done, _n: arrived.append(done))
    np.testing.assert_allclose(got, clf.predict_proba(texts), rtol=0, atol=1e-6)
    assert arrived == list(range(2, N + 1, 2))


def test_the_worker_hands_its_classify_jobs_to_ray(
    cluster: None, models: dict[str, Path], seeded_db: Path, tmp_path: Path
) -> None:
    """`curation worker --engine ray`: a classify job of the queue is scored on the cluster
    and stores the local path's predictions."""
    from curation.services import loop

    (tmp_path / "local").mkdir()
    local = _store_predictions(seeded_db, tmp_path / "local", models["tfidf"])
    db = tmp_path / "w.duckdb"
    shutil.copy(seeded_db, db)
    store = Store(db)
    job = loop.enqueue(store, "classify", {"model_dir": str(models["tfidf"])})
    out = loop.run_worker(store, once=True, loop=False, device="cpu",
                          scoring={"engine": "ray", "address": None, "actors": 2})
    assert out["jobs"] == [{"id": job["id"], "kind": "classify", "state": "done"}]
    result = loop.get_job(store, job["id"])["result"]
    preds = store.run(lambda con: sm.predictions(con, result["model_version"]))
    np.testing.assert_allclose([preds[q]["reasoning_prob"] for q in local], list(local.values()), rtol=0, atol=1e-6)
    with pytest.raises(Exception, match="not one of local, ray"):
        loop.run_worker(store, once=True, loop=False, scoring={"engine": "spark"})
