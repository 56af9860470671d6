"""What changed between two releases (`curation release diff OLD NEW`, the manifest's `changes`).

Configs are matched by name (names may change between release schema versions: a config in
one release only is reported as such, never guessed). Within a config, rows are matched on
`id`: rows added and removed. Labels are compared on the questions in both releases, one
row per `id` across every row config (a question is the same row in `all` and in its
benchmark's config): `human_label`, `n_annotators`, `label_source`, `is_reasoning`, counted
per benchmark and per current label source. The classifier is compared from the manifests
(version, threshold). The result holds counts and the first `first_n` ids (sorted) of each
kind; no local path (it may go into a published manifest).
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.release.manifest import MANIFEST, read_config, read_manifest

LABEL_FIELDS = ("human_label", "n_annotators", "label_source", "is_reasoning")
FIRST_N = 20
NO_SOURCE = "none"  # label_source of a row no person labeled


class _Side:
    """One release: its manifest and a reader of its configs."""

    def __init__(self, folder: Path, manifest: Mapping[str, Any] | None = None) -> None:
        self.folder = folder
        self.manifest: Mapping[str, Any] = manifest if manifest is not None else read_manifest(folder)
        self._given = manifest is not None

    @property
    def configs(self) -> Mapping[str, Any]:
        return self.manifest.get("configs") or {}

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        if self._given:  # a release being built: its manifest is not written yet
            import pyarrow.parquet as pq

            return pq.read_table(self.folder / self.configs[name]["path"], columns=columns)
        table = read_config(self.folder, name)
        return table.select(columns) if columns is not None else table


def diff_releases(old: str | os.PathLike[str], new: str | os.PathLike[str], *, first_n: int = FIRST_N,
                  new_manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compare release folder `old` with release folder `new` (see the module docstring).
    `new_manifest`: the manifest of `new` when it is not written yet (during a build)."""
    if first_n < 0:
        raise ValueError("first_n must be >= 0")
    a, b = _Side(Path(old)), _Side(Path(new), new_manifest)
    return {
        "old": _release_info(a.manifest),
        "new": _release_info(b.manifest),
        "first_n": first_n,
        "configs": _config_changes(a, b, first_n),
        "labels": _label_changes(_question_rows(a), _question_rows(b), first_n),
        "model": _model_change(a.manifest, b.manifest),
    }


def _release_info(m: Mapping[str, Any]) -> dict[str, Any]:
    return {"version": m.get("version"), "schema_version": m.get("schema_version"),
            "content_hash": m.get("content_hash")}


def _has_id(side: _Side, name: str) -> bool:
    import pyarrow.parquet as pq

    return "id" in pq.read_schema(side.folder / side.configs[name]["path"]).names


def _ids(side: _Side, name: str) -> set[str]:
    return set(side.table(name, ["id"]).column("id").to_pylist())


def _first(ids: set[str], n: int) -> list[str]:
    return sorted(ids)[:n]


def _config_changes(a: _Side, b: _Side, first_n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in [*a.configs, *(c for c in b.configs if c not in a.configs)]:
        ca, cb = a.configs.get(name), b.configs.get(name)
        entry: dict[str, Any] = {
            "status": "both" if ca and cb else ("only_old" if ca else "only_new"),
            "kind": (cb or ca or {}).get("kind"),
            "rows_old": ca["rows"] if ca else None,
            "rows_new": cb["rows"] if cb else None,
        }
        if ca and cb and _has_id(a, name) and _has_id(b, name):
            ia, ib = _ids(a, name), _ids(b, name)
            entry.update(added=len(ib - ia), removed=len(ia - ib),
                         added_ids=_first(ib - ia, first_n), removed_ids=_first(ia - ib, first_n))
        elif ca and cb:
            entry["note"] = "no id column: rows not compared"
        out[name] = entry
    return out


def _question_rows(side: _Side) -> dict[str, dict[str, Any]]:
    """{id: {dataset_name, label fields}} over every config that has them (first one wins)."""
    import pyarrow.parquet as pq

    rows: dict[str, dict[str, Any]] = {}
    wanted = ["id", "dataset_name", *LABEL_FIELDS]
    for name, entry in side.configs.items():
        names = set(pq.read_schema(side.folder / entry["path"]).names)
        if not set(wanted) <= names:
            continue
        for r in side.table(name, wanted).to_pylist():
            rows.setdefault(r["id"], r)
    return rows


def _label_changes(old: Mapping[str, dict[str, Any]], new: Mapping[str, dict[str, Any]],
                   first_n: int) -> dict[str, Any]:
    common = sorted(set(old) & set(new))
    changed: dict[str, list[str]] = {f: [] for f in LABEL_FIELDS}
    by_bench: defaultdict[str, Counter[str]] = defaultdict(Counter)
    by_source: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for qid in common:
        o, n = old[qid], new[qid]
        for f in LABEL_FIELDS:
            if o[f] != n[f]:
                changed[f].append(qid)
                by_bench[str(n["dataset_name"])][f] += 1
                by_source[str(n["label_source"] or NO_SOURCE)][f] += 1

    def counts(c: Counter[str]) -> dict[str, int]:
        return {f: c[f] for f in LABEL_FIELDS if c[f]}

    return {
        "n_compared": len(common),
        "fields": {f: {"n": len(ids), "ids": ids[:first_n]} for f, ids in changed.items()},
        "by_benchmark": {k: counts(v) for k, v in sorted(by_bench.items())},
        "by_label_source": {k: counts(v) for k, v in sorted(by_source.items())},
    }


def _model_change(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    def info(m: Mapping[str, Any]) -> dict[str, Any]:
        model = m.get("model") or {}
        return {"version": model.get("version"), "threshold": model.get("threshold")}

    old, new = info(a), info(b)
    return {"changed": old != new, "old": old, "new": new}


# -- which release came before ------------------------------------------------------------


def _natural_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """'v0.10.1' > 'v0.9.3': digit runs compare as numbers, the rest as text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p)


def _version_key(names: list[str]) -> Callable[[str], Any]:
    """`packaging.version` when installed and every name parses (v-prefixes allowed); else a
    natural sort (mixing the two orders would compare unlike things)."""
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return _natural_key
    try:
        for n in names:
            Version(n)
    except InvalidVersion:
        return _natural_key
    return Version


def previous_version(versions: Iterable[str], version: str) -> str | None:
    """The highest of `versions` lower than `version` (by `_version_key`), or None."""
    names = sorted(set(versions) - {version})
    key = _version_key([*names, version])
    lower = [n for n in names if key(n) < key(version)]
    return max(lower, key=key) if lower else None


def previous_release(out_dir: str | os.PathLike[str], version: str) -> Path | None:
    """The release folder in `out_dir` with the highest version lower than `version` (a folder
    with a manifest; hidden build folders are skipped), or None."""
    root = Path(out_dir)
    if not root.is_dir():
        return None
    names = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())
    key = _version_key([*names, version])
    lower = [n for n in names if key(n) < key(version)]
    return root / max(lower, key=key) if lower else None
