"""The PostgreSQL store against a real server: `store copy` both ways (verified by row counts
and content hashes, refusing a non-empty target), a release built from PostgreSQL that equals
the DuckDB one byte for byte, and two processes sharing one store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from release_fixture import build_store
from typer.testing import CliRunner

from curation import release
from curation.cli import app
from curation.errors import InputError, StoreMissingError
from curation.services import annotate
from curation.services.stores import copy_store, verify_copy
from curation.store import Store
from curation.store import copy as cstore
from curation.store.annotations import Annotation, append
from curation.store.postgres import PgStore, redact

pytestmark = pytest.mark.integration

CMD = ["curation", "release", "build", "--version", "v1"]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_release_from_postgres_equals_the_duckdb_one_byte_for_byte(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "duck").mkdir()
    duck = build_store(tmp_path / "duck")
    release.build_release(duck, version="v1", out=tmp_path / "from-duckdb", command=CMD)

    pg = Store(pg_url)
    assert isinstance(pg, PgStore)
    report = copy_store(duck, pg)
    assert report["rows"] > 0 and report["tables"]["annotations"]["rows"] > 0
    release.build_release(pg, version="v1", out=tmp_path / "from-postgres", command=CMD)

    a, b = _files(tmp_path / "from-duckdb" / "v1"), _files(tmp_path / "from-postgres" / "v1")
    assert sorted(a) == sorted(b)
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"files differ between the backends: {differ}"

    # and back: PostgreSQL -> a new DuckDB file holds the same rows, the build is the same again
    back = Store(tmp_path / "back.duckdb", create=True)
    copy_store(pg, back)
    release.build_release(back, version="v1", out=tmp_path / "back-again", command=CMD)
    assert _files(tmp_path / "back-again" / "v1") == a


def test_copy_continues_sequences_and_refuses_a_non_empty_target(tmp_path: Path, pg_url: str) -> None:
    duck = Store(tmp_path / "a.duckdb", create=True)
    from curation.store import utcnow

    duck.run(lambda con: append(con, [Annotation(f"q{i}", "ann", "label", "reasoning", "app", utcnow(),
                                                 event_id=f"e{i}") for i in range(5)]))
    pg = Store(pg_url)
    copy_store(duck, pg)
    # a new label on the copy takes the next sequence number, not one already copied
    pg.run(lambda con: append(con, [Annotation("q9", "ann", "label", "knowledge", "app", utcnow(), event_id="e9")]))
    seqs = pg.run(lambda con: [r[0] for r in con.execute("SELECT seq FROM annotations ORDER BY seq").fetchall()])
    assert seqs == [1, 2, 3, 4, 5, 6]
    # back into DuckDB: the sequence continues there too
    back = Store(tmp_path / "b.duckdb", create=True)
    copy_store(pg, back)
    back.run(lambda con: append(con, [Annotation("q10", "ann", "label", "knowledge", "app", utcnow(), event_id="e10")]))
    assert back.run(lambda con: con.execute("SELECT max(seq) FROM annotations").fetchall()[0][0]) == 7

    before = pg.run(cstore.row_counts)
    with pytest.raises(InputError, match="not empty: annotations"):
        copy_store(duck, pg)
    assert pg.run(cstore.row_counts) == before  # nothing was written
    with pytest.raises(InputError, match="the same store"):
        copy_store(pg, Store(pg_url))
    # a changed row on one side is found by the content hash, even with equal counts
    pg.run(lambda con: con.execute("INSERT INTO users VALUES ('x', 'annotator', 'h', false, ?, 'unknown')",
                                   [utcnow()]))
    back.run(lambda con: con.execute("INSERT INTO users VALUES ('x', 'maintainer', 'h', false, ?, 'unknown')",
                                     [utcnow()]))
    back.run(lambda con: con.execute("DELETE FROM annotations WHERE event_id = 'e10'"))
    with pytest.raises(Exception, match="differs .* in users"):
        verify_copy(pg, back)


def test_store_copy_command_and_its_errors(tmp_path: Path, pg_url: str) -> None:
    runner = CliRunner()
    src = tmp_path / "src.duckdb"
    assert runner.invoke(app, ["ingest", "--sample", "--db", str(src)]).exit_code == 0
    res = runner.invoke(app, ["store", "copy", "--from", str(src), "--to", pg_url, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["tables"]["question_rows"]["rows"] == 7358
    res = runner.invoke(app, ["stats", "--db", pg_url, "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["questions"] == 7358, res.output
    again = runner.invoke(app, ["store", "copy", "--from", str(src), "--to", pg_url])
    assert again.exit_code == 2 and "not empty" in again.output
    missing = runner.invoke(app, ["store", "copy", "--from", str(tmp_path / "nope.duckdb"), "--to", pg_url])
    assert missing.exit_code != 0 and "no store here" in missing.output
    # an unreachable server: a message naming it (password hidden), no traceback
    url = "postgresql://curation:s3cret@127.0.0.1:1/none"
    down = runner.invoke(app, ["stats", "--db", url])
    assert down.exit_code != 0 and "cannot reach the PostgreSQL store" in down.output
    assert "s3cret" not in down.output and "Traceback" not in down.output
    with pytest.raises(StoreMissingError):
        Store(url).require_file()
    assert redact(url) == "postgresql://curation:***@127.0.0.1:1/none"


_CHILD = """
import sys
from curation.services import annotate
from curation.store import Store
store = Store(sys.argv[1])
done = 0
state = annotate.fetch_next(store, sys.argv[2])
while state.get("task") is not None:
    qid = state["task"]["question_id"]
    state = annotate.submit_and_next(store, sys.argv[2], qid, action="label", event_id=f"{sys.argv[2]}:{qid}",
                                     label="reasoning")
    done += 1
print(done)
"""


def test_two_processes_share_the_queue_and_k_holds(pg_url: str, tmp_path: Path) -> None:
    """Four annotators in two processes (two threads' worth each, as separate replicas would
    be) label one batch at overlap 2: every question gets exactly two people, nobody twice."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))
    from relkit import seed_questions

    store = Store(pg_url)
    qids = seed_questions(store, 40, prefix="r", batch_id="b1", overlap=2)
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, pg_url, name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("p1", "p2", "p3", "p4")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert sum(int(o[0].strip()) for o in outs) == 80

    def check(con: Any) -> tuple[Any, ...]:
        return tuple(con.execute(
            "SELECT min(n), max(n), count(*) FROM (SELECT question_id, count(DISTINCT annotator) AS n "
            "FROM annotations WHERE action = 'label' GROUP BY question_id) AS per").fetchall()[0]) + tuple(
            con.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM annotations "
                        "GROUP BY question_id, annotator) AS per").fetchall()[0])

    assert store.run(check) == (2, 2, len(qids), 1)
    assert annotate.fetch_next(store, "p1").get("task") is None


_CLAIMER = """
import sys
from curation.services import loop
from curation.store import Store, utcnow
from curation.store import jobs as sj
store = Store(sys.argv[1])
taken = []
while True:
    job = loop.claim(store, sys.argv[2], kinds=["ls-pull"])
    if job is None:
        break
    taken.append(job["id"])
    assert store.run(lambda con: sj.finish(con, job["id"], sys.argv[2], result={"by": sys.argv[2]}, now=utcnow()))
print(",".join(map(str, taken)))
"""


def test_workers_on_two_hosts_never_take_the_same_job(pg_url: str) -> None:
    """Three worker processes claim from one PostgreSQL store: every job runs once."""
    from curation.services import loop

    store = Store(pg_url)
    ids = [loop.enqueue(store, "ls-pull", {"n": i})["id"] for i in range(30)]
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMER, pg_url, f"w{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    taken = [int(x) for o in outs for x in o[0].strip().split(",") if x]
    assert sorted(taken) == sorted(ids)  # each job claimed by exactly one worker
    jobs = loop.list_jobs(store, limit=100)
    assert {j["state"] for j in jobs} == {"done"} and {j["attempts"] for j in jobs} == {1}
