"""Publishing with the real `huggingface_hub` client against a local Hub TEST DOUBLE
(`hub_double.py`; a plain-http loopback endpoint, hence `allow_insecure_loopback` /
`--allow-http-loopback`): byte-equal uploads, tags, refusal to overwrite a tag, private-only releases,
and a planted token that never shows up in any output, card, manifest or file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_double import HubDouble
from release_fixture import build_store
from typer.testing import CliRunner

from curation import hub, release
from curation.cli import app
from curation.errors import ConfigError, InputError, PermissionDenied
from curation.store import Store
from curation.store import releases as rstore

pytestmark = pytest.mark.integration

TOKEN = "hf_PLANTEDsecretTOKEN1234567890abcdef"


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


def _local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_publish_uploads_byte_equal_files_and_tags(built: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    folder = exports / "v1"
    result = release.publish_release(store, folder, repo_id="lab/medqa-strat", token=TOKEN, endpoint=double.endpoint, allow_insecure_loopback=True)
    repo = double.repo("lab/medqa-strat")
    assert repo.private is False
    assert repo.files == _local_files(folder)  # every file, byte for byte (parquet/png via LFS)
    assert repo.tags == {"v1": result["commit_sha"]}
    assert len(repo.commits) == 1 and repo.commits[0]["summary"] == "Release v1"
    assert ("PUT", f"/lfs-upload/{release.file_sha256(folder / 'data/all/test.parquet')}") in double.state.requests
    pubs = store.run(lambda con: rstore.list_publications(con, "v1"))
    assert pubs[0]["repo_id"] == "lab/medqa-strat" and pubs[0]["commit_sha"] == result["commit_sha"]
    assert pubs[0]["tag"] == "v1" and pubs[0]["endpoint"] == double.endpoint

    # the same version again: refused before anything is uploaded, the tag is untouched
    n_requests = len(double.state.requests)
    with pytest.raises(InputError, match="already has a tag 'v1'"):
        release.publish_release(store, folder, repo_id="lab/medqa-strat", token=TOKEN, endpoint=double.endpoint, allow_insecure_loopback=True)
    assert len(repo.commits) == 1 and repo.tags == {"v1": result["commit_sha"]}
    assert not any(m == "POST" and "/commit/" in p for m, p in double.state.requests[n_requests:])


def test_restricted_release_only_private(built: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    folder = exports / "v1r"
    with pytest.raises(PermissionDenied):
        release.publish_release(store, folder, repo_id="lab/private", token=TOKEN, endpoint=double.endpoint, allow_insecure_loopback=True)
    assert double.state.requests == []  # refused before contacting the Hub
    release.publish_release(store, folder, repo_id="lab/private", private=True, token=TOKEN, endpoint=double.endpoint, allow_insecure_loopback=True)
    assert double.repo("lab/private").private is True
    # an existing public repo is not used for a private release
    release.publish_release(store, exports / "v1", repo_id="lab/public", token=TOKEN, endpoint=double.endpoint, allow_insecure_loopback=True)
    with pytest.raises(PermissionDenied, match="is public"):
        release.publish_release(store, folder, repo_id="lab/public", private=True, token=TOKEN, endpoint=double.endpoint, allow_insecure_loopback=True)
    assert set(double.repo("lab/public").tags) == {"v1"}


def test_dry_run_contacts_nobody(built: tuple[Store, Path], double: HubDouble) -> None:
    store, exports = built
    before = store.run(lambda con: rstore.list_publications(con))
    plan = release.publish_release(store, exports / "v1", repo_id="lab/dry", dry_run=True, token=TOKEN,
                                   endpoint=double.endpoint, allow_insecure_loopback=True)
    assert plan["dry_run"] and plan["token_found"] and plan["tag"] == "v1"
    assert {f["path"] for f in plan["files"]} == set(_local_files(exports / "v1"))
    assert double.state.requests == []
    assert TOKEN not in json.dumps(plan)
    assert store.run(lambda con: rstore.list_publications(con)) == before  # nothing recorded


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


def test_cli_publish_never_shows_the_token(built: tuple[Store, Path], double: HubDouble, tmp_path: Path) -> None:
    store, exports = built
    runner = CliRunner()
    env = {"HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
    outputs: list[str] = []
    for args in (
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--dry-run", "--endpoint", double.endpoint, "--allow-http-loopback"],
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--endpoint", double.endpoint, "--allow-http-loopback", "--json"],
        ["release", "publish", str(exports / "v1"), "--repo", "lab/cli", "--endpoint", double.endpoint, "--allow-http-loopback"],  # tag exists
        ["release", "publish", str(exports / "v1r"), "--repo", "lab/cli2", "--endpoint", double.endpoint, "--allow-http-loopback"],  # not private
        ["release", "list"],
    ):
        res = runner.invoke(app, [*args, "--db", str(store.path)], env=env)
        outputs.append(res.output + (str(res.exception) if res.exception else ""))
        if args[-1] == "--json":
            assert res.exit_code == 0, res.output
            assert json.loads(res.stdout)["tag"] == "v1"
    assert "token found" in outputs[0]
    assert "already has a tag" in outputs[2] and "--private" in outputs[3]
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
