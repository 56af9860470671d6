"""Publishing with the real `huggingface_hub` client against a local Hub TEST DOUBLE
(`hub_double.py`; a plain-http loopback endpoint, hence `allow_insecure_loopback` /
`--allow-http-loopback`): after a publish `main` is exactly the release (byte for byte, README
rendered for the Hub, `.gitattributes` kept), even over an older larger release or a
restricted private one; tags, refusal to overwrite a tag, private-only releases, a private repo
with a restricted history never taken for a public release; a read-only dry run whose checks
(token, write access, repo, tag, card) each fail with a clear message; and a planted token that
never shows up in any output, card, manifest or file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_double import GITATTRIBUTES, HubDouble, Identity
from huggingface_hub import DatasetCard
from release_fixture import build_store
from typer.testing import CliRunner

from curation import hub, release
from curation.card import render_card
from curation.cli import app
from curation.errors import ConfigError, InputError, PermissionDenied
from curation.ingest import ingest_paths
from curation.store import Store
from curation.store import releases as rstore

pytestmark = pytest.mark.integration

TOKEN = "hf_PLANTEDsecretTOKEN1234567890abcdef"
CHECKS = ["token", "write access", "repo", "tag", "card"]


@pytest.fixture(autouse=True)
def _online_against_the_double(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs with HF_HUB_OFFLINE=1; these tests talk to 127.0.0.1 only."""
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_DISABLE_XET", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def double() -> Iterator[HubDouble]:
    d = HubDouble(TOKEN).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    tmp = tmp_path_factory.mktemp("publish")
    store = build_store(tmp)
    release.build_release(store, version="v1", out=tmp / "exports", command=["curation", "release", "build"])
    release.build_release(store, version="v1r", out=tmp / "exports", include_restricted=True)
    return store, tmp / "exports"


@pytest.fixture(scope="module")
def older(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    """An older, larger, non-restricted release `v0`: the same store plus a benchmark (synthetic
    rows) that `v1` does not have."""
    tmp = tmp_path_factory.mktemp("publish_older")
    store = build_store(tmp)
    extra = tmp / "extra.jsonl"
    rows = [{"id": f"pubmedqa-80000{i}", "dataset_name": "pubmedqa", "split": "test",
             "question": f"Synthetic yes/no question number {i} about a made-up trial outcome?",
             "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer_idx": "A", "answer": "yes",
             "source": "tests/test_publish"} for i in range(3)]
    extra.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest_paths(store, [extra])
    release.build_release(store, version="v0", out=tmp / "exports")
    return store, tmp / "exports" / "v0"


def _local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _publish(store: Store, folder: Path, repo_id: str, double: HubDouble, **kw: Any) -> dict[str, Any]:
    return release.publish_release(store, folder, repo_id=repo_id, token=kw.pop("token", TOKEN),
                                   endpoint=double.endpoint, allow_insecure_loopback=True, **kw)


def _assert_main_is(double: HubDouble, repo_id: str, folder: Path) -> None:
    """`main` holds exactly the release's files (and the Hub's .gitattributes), byte for byte,
    but README.md, which is the card rendered for the Hub: it names the repo and pins the tag,
    and its metadata (configs, licence, ...) is the folder's README.md's."""
    repo = double.repo(repo_id)
    local = _local_files(folder)
    assert set(repo.files) == set(local) | {".gitattributes"}
    assert repo.files[".gitattributes"] == GITATTRIBUTES
    assert {p: b for p, b in repo.files.items() if p not in ("README.md", ".gitattributes")} == {
        p: b for p, b in local.items() if p != "README.md"}
    manifest = release.read_manifest(folder)
    tag = str(manifest["version"])
    hub_readme = repo.files["README.md"].decode("utf-8")
    assert hub_readme == render_card(manifest, repo_id=repo_id, revision=tag)
    assert f'revision="{tag}"' in hub_readme and repo_id in hub_readme
    snippet = [line for line in hub_readme.splitlines() if "load_dataset(" in line and "=" in line]
    assert snippet and all(f'load_dataset("{repo_id}"' in line and f'revision="{tag}"' in line for line in snippet)

    def metadata(text: str) -> dict[str, Any]:
        data = DatasetCard(text).data.to_dict()
        return {k: sorted(v, key=lambda c: c["config_name"]) if k in ("configs", "dataset_info") else v
                for k, v in data.items()}  # the same configs, in any order

    assert metadata(hub_readme) == metadata(local["README.md"].decode("utf-8"))
    release.verify_release(folder)  # the local folder is untouched and still verifies


def test_publish_uploads_byte_equal_files_and_tags(built: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    folder = exports / "v1"
    result = _publish(store, folder, "lab/medqa-strat", double)
    repo = double.repo("lab/medqa-strat")
    assert repo.private is False and result["private"] is False
    _assert_main_is(double, "lab/medqa-strat", folder)
    assert repo.tags == {"v1": result["commit_sha"]}
    assert [c["summary"] for c in repo.commits] == ["initial commit", "Release v1"] and result["deleted"] == []
    assert ("PUT", f"/lfs-upload/{release.file_sha256(folder / 'data/all/test.parquet')}") in double.state.requests
    pubs = store.run(lambda con: rstore.list_publications(con, "v1"))
    assert pubs[0]["repo_id"] == "lab/medqa-strat" and pubs[0]["commit_sha"] == result["commit_sha"]
    assert pubs[0]["tag"] == "v1" and pubs[0]["endpoint"] == double.endpoint

    # the same version again: refused before anything is written, the tag is untouched
    n_writes = len(double.writes())
    with pytest.raises(InputError, match="already has a tag 'v1'"):
        _publish(store, folder, "lab/medqa-strat", double)
    assert len(repo.commits) == 2 and repo.tags == {"v1": result["commit_sha"]}
    assert double.writes()[n_writes:] == []


def test_publish_over_an_older_larger_release_deletes_what_it_lacks(
        built: tuple[Store, Path], older: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    old_store, old_folder = older
    _publish(old_store, old_folder, "lab/grow", double)
    _assert_main_is(double, "lab/grow", old_folder)
    gone = sorted(set(_local_files(old_folder)) - set(_local_files(exports / "v1")))
    assert any(p.startswith("data/pubmedqa/") for p in gone), gone

    plan = _publish(store, exports / "v1", "lab/grow", double, dry_run=True)
    assert plan["ok"] and plan["delete"] == gone

    result = _publish(store, exports / "v1", "lab/grow", double)
    _assert_main_is(double, "lab/grow", exports / "v1")
    repo = double.repo("lab/grow")
    last = repo.commits[-1]  # one commit both adds the new files and deletes the old ones
    assert last["sha"] == result["commit_sha"] and last["deleted"] == gone == result["deleted"]
    assert set(last["files"]) == set(_local_files(exports / "v1"))
    # the old release is still there under its own tag, as published
    assert set(repo.tree_at("v0")[1]) == set(_local_files(old_folder)) | {".gitattributes"}  # type: ignore[index]


def test_restricted_release_only_private(built: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    folder = exports / "v1r"
    with pytest.raises(PermissionDenied):
        _publish(store, folder, "lab/private", double)
    assert double.state.requests == []  # refused before contacting the Hub
    _publish(store, folder, "lab/private", double, private=True)
    assert double.repo("lab/private").private is True
    _assert_main_is(double, "lab/private", folder)
    # an existing public repo is not used for a private release
    _publish(store, exports / "v1", "lab/public", double)
    with pytest.raises(PermissionDenied, match="is public"):
        _publish(store, folder, "lab/public", double, private=True)
    assert set(double.repo("lab/public").tags) == {"v1"}


def test_restricted_data_never_survives_on_main(built: tuple[Store, Path], older: tuple[Store, Path],
                                                double: HubDouble) -> None:
    """A restricted release published privately, then a non-restricted one over it: main
    loses every restricted file in that commit; a publish meant to be public (no --private)
    is refused since the history holds the restricted tag, before anything is written."""
    store, exports = built
    _publish(store, exports / "v1r", "lab/p", double, private=True)
    restricted = sorted(set(double.repo("lab/p").files) - set(_local_files(exports / "v1")) - {".gitattributes"})
    assert restricted and any("gpqa" in p.lower() for p in restricted), restricted

    n_writes = len(double.writes())
    with pytest.raises(PermissionDenied, match=r"history holds restricted benchmarks \(tags v1r\).*--private"):
        _publish(store, exports / "v1", "lab/p", double)
    plan = _publish(store, exports / "v1", "lab/p", double, dry_run=True)
    assert not plan["ok"] and [c["check"] for c in plan["checks"] if not c["passed"]] == ["repo"]
    assert double.writes()[n_writes:] == []

    result = _publish(store, exports / "v1", "lab/p", double, private=True)
    _assert_main_is(double, "lab/p", exports / "v1")
    assert result["deleted"] == restricted and result["private"] is True
    assert not any("gpqa" in p.lower() for p in double.repo("lab/p").files)
    assert double.repo("lab/p").private is True

    # a private repo whose history holds no restricted release takes a public release; it stays private
    _publish(store, exports / "v1", "lab/clean", double, private=True)
    old_store, old_folder = older
    result = _publish(old_store, old_folder, "lab/clean", double)
    assert result["private"] is True and double.repo("lab/clean").private is True
    assert old_store.run(lambda con: rstore.list_publications(con, "v0"))[0]["private"] is True


def test_dry_run_checks_without_writing(built: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    before = store.run(lambda con: rstore.list_publications(con))
    plan = _publish(store, exports / "v1", "lab/dry", double, dry_run=True)
    assert plan["dry_run"] and plan["token_found"] and plan["tag"] == "v1"
    assert [c["check"] for c in plan["checks"]] == CHECKS and plan["ok"], plan["checks"]
    assert "does not exist yet" in plan["checks"][2]["detail"] and plan["delete"] == []
    assert {f["path"] for f in plan["files"]} == set(_local_files(exports / "v1"))
    assert ("GET", "/api/whoami-v2") in double.state.requests
    assert double.writes() == [] and double.state.repos == {}
    assert TOKEN not in json.dumps(plan)
    assert store.run(lambda con: rstore.list_publications(con)) == before  # nothing recorded


def _failed(plan: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["detail"] for c in plan["checks"] if not c["passed"]}


@pytest.mark.parametrize(("identity", "ok", "why"), [
    (Identity(orgs={"lab": "read"}), False, "role 'read' in 'lab'"),
    (Identity(orgs={"lab": "contributor"}), False, "needs 'write' or 'admin'"),
    (Identity(orgs={"other": "admin"}), False, "not a member of 'lab'"),
    (Identity(role="read"), False, "publishing needs a write token"),
    (Identity(role="fineGrained", scoped={"lab": ["repo.content.read"]}), False, "no repo.write permission on 'lab'"),
    (Identity(role="fineGrained", scoped={"lab": ["repo.content.read", "repo.write"]}), True, "repo.write on 'lab'"),
    (Identity(orgs={"lab": "admin"}), True, "role 'admin'"),
])
def test_dry_run_write_access(built: tuple[Store, Path], double: HubDouble, identity: Identity, ok: bool,
                              why: str) -> None:
    store, exports = built
    other = "hf_OTHERtokenFORrights000000000000"
    double.add_token(other, identity)
    plan = _publish(store, exports / "v1", "lab/rights", double, dry_run=True, token=other)
    access = next(c for c in plan["checks"] if c["check"] == "write access")
    assert access["passed"] is ok and why in access["detail"], access
    assert plan["ok"] is ok and double.writes() == []
    if not ok:  # a real publish is refused by the same check, before anything is written
        with pytest.raises(PermissionDenied, match=why):
            _publish(store, exports / "v1", "lab/rights", double, token=other)
        assert double.writes() == [] and double.state.repos == {}


def test_dry_run_existing_tag_and_bad_token(built: tuple[Store, Path], double: HubDouble,
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store, exports = built
    _publish(store, exports / "v1", "lab/tagged", double)
    plan = _publish(store, exports / "v1", "lab/tagged", double, dry_run=True)
    assert _failed(plan) == {"tag": "lab/tagged already has a tag 'v1'; a published version is never overwritten: "
                                    "build and publish a new version"}
    wrong = "hf_WRONGtokenVALUE0987654321"
    plan = _publish(store, exports / "v1", "lab/tagged", double, dry_run=True, token=wrong)
    failed = _failed(plan)
    assert "refused the token (401)" in failed["token"] and set(failed) == {"token", "write access", "repo", "tag"}
    assert wrong not in json.dumps(plan)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no login cache
    plan = hub.publish(exports / "v1", "lab/tagged", dry_run=True, endpoint=double.endpoint, allow_insecure_loopback=True)
    assert not plan["token_found"] and "HF_TOKEN" in _failed(plan)["token"]


@pytest.mark.parametrize(("card", "why"), [
    ("---\nlicense: [mit\nconfigs: []\n---\n# broken\n", "README.md line 3: the YAML header does not parse"),
    ("---\n- just\n- a list\n---\n", "not a mapping"),
    ("# no metadata at all\n", "no YAML header"),
    ("---\nlicense: mit\nconfigs:\n- config_name: all\n  data_files:\n  - split: test\n    path: data/nope/test.parquet\n---\n",
     "config 'all' reads data/nope/test.parquet, which is not in the release"),
    ("---\nconfigs:\n- config_name: all\n  data_files: data/all/test.parquet\n---\n", "'license' is missing"),
])
def test_card_yaml_is_checked(built: tuple[Store, Path], double: HubDouble, card: str, why: str) -> None:
    _, exports = built
    kw: dict[str, Any] = {"token": TOKEN, "endpoint": double.endpoint, "allow_insecure_loopback": True, "readme": card}
    plan = hub.publish(exports / "v1", "lab/card", dry_run=True, **kw)
    assert set(_failed(plan)) == {"card"} and why in _failed(plan)["card"], plan["checks"]
    with pytest.raises(InputError, match="README.md"):
        hub.publish(exports / "v1", "lab/card", **kw)
    assert double.writes() == []
    good = hub.publish(exports / "v1", "lab/card", dry_run=True, **{**kw, "readme": None})
    assert good["ok"], good["checks"]


def test_a_broken_local_card_is_caught_by_the_folder_check(built: tuple[Store, Path], double: HubDouble,
                                                          tmp_path: Path) -> None:
    store, exports = built
    folder = tmp_path / "v1"
    shutil.copytree(exports / "v1", folder)
    (folder / "README.md").write_text("---\nlicense: [mit\n---\n", encoding="utf-8")
    with pytest.raises(InputError, match="README.md: sha256 differs"):
        _publish(store, folder, "lab/card", double, dry_run=True)


def test_the_double_enforces_deletions_and_parent_commits(double: HubDouble) -> None:
    """The double answers deletions and stale parents like the Hub (the client raises)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    api = HfApi(endpoint=double.endpoint, token=TOKEN)
    api.create_repo("lab/ops", repo_type="dataset")
    first = api.create_commit("lab/ops", [CommitOperationAdd("a/x.txt", b"x"), CommitOperationAdd("a/y.txt", b"y"),
                                          CommitOperationAdd("b.txt", b"b")], repo_type="dataset", commit_message="one")
    api.create_commit("lab/ops", [CommitOperationDelete("a/")], repo_type="dataset", commit_message="two")
    assert sorted(api.list_repo_files("lab/ops", repo_type="dataset")) == [".gitattributes", "b.txt"]
    with pytest.raises(EntryNotFoundError):
        api.create_commit("lab/ops", [CommitOperationDelete("a/x.txt")], repo_type="dataset", commit_message="gone")
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_commit("lab/ops", [CommitOperationAdd("c.txt", b"c")], repo_type="dataset",
                          commit_message="stale", parent_commit=first.oid)
    assert exc.value.response.status_code == 412
    assert sorted(api.list_repo_files("lab/ops", repo_type="dataset", revision=first.oid)) == [
        ".gitattributes", "a/x.txt", "a/y.txt", "b.txt"]


def test_missing_and_wrong_token(built: tuple[Store, Path], double: HubDouble, monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path) -> None:
    store, exports = built
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no login cache
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        hub.publish(exports / "v1", "lab/x", endpoint=double.endpoint, tag="v1", allow_insecure_loopback=True)
    wrong = "hf_WRONGtokenVALUE0987654321"
    with pytest.raises(hub.HubError) as exc:
        hub.publish(exports / "v1", "lab/x", token=wrong, endpoint=double.endpoint, tag="v1", allow_insecure_loopback=True)
    assert "401" in str(exc.value) and wrong not in str(exc.value)
    with pytest.raises(InputError, match="ORG/NAME"):
        hub.publish(exports / "v1", "no-slash", token=TOKEN, endpoint=double.endpoint, tag="v1", allow_insecure_loopback=True)
    assert double.writes() == []


def test_cli_publish_never_shows_the_token(built: tuple[Store, Path], double: HubDouble, tmp_path: Path) -> None:
    store, exports = built
    runner = CliRunner()
    env = {"HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
    outputs: list[str] = []
    codes: list[int] = []
    for args in (
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--dry-run", "--endpoint", double.endpoint, "--allow-http-loopback"],
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--endpoint", double.endpoint, "--allow-http-loopback", "--json"],
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--endpoint", double.endpoint, "--allow-http-loopback"],  # tag exists
        ["release", "publish", str(exports / "v1r"), "--repo", "lab/cli2", "--endpoint", double.endpoint, "--allow-http-loopback"],  # not private
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--dry-run", "--endpoint", double.endpoint, "--allow-http-loopback"],
        ["release", "list"],
    ):
        res = runner.invoke(app, [*args, "--db", str(store.path)], env=env)
        outputs.append(res.output + (str(res.exception) if res.exception else ""))
        codes.append(res.exit_code)
        if args[-1] == "--json":
            assert res.exit_code == 0, res.output
            assert json.loads(res.stdout)["tag"] == "v1"
    assert "token found" in outputs[0] and codes[0] == 0
    assert all(f"passed  {name}:" in outputs[0] for name in CHECKS), outputs[0]
    assert "already has a tag" in outputs[2] and "--private" in outputs[3]
    assert "FAILED  tag: lab/cli already has a tag 'v1'" in outputs[4] and codes[4] == 1  # a failed check exits 1
    for out in outputs:
        assert TOKEN not in out
    # nor in any file of the release, locally or on the (double) Hub, nor in the store's records
    for data in list(_local_files(exports / "v1").values()) + list(double.repo("lab/cli").files.values()):
        assert TOKEN.encode() not in data
    rows: list[Any] = store.run(lambda con: con.execute("SELECT * FROM publications").fetchall()
                                + con.execute("SELECT manifest FROM releases").fetchall())
    assert TOKEN not in repr(rows)
    assert (exports / "v1" / "README.md").read_text(encoding="utf-8").count(TOKEN) == 0
    assert TOKEN not in (exports / "v1" / "manifest.json").read_text(encoding="utf-8")
