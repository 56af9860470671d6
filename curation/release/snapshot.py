"""What a release build reads from the store, taken in one short transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from curation.errors import NotFoundError
from curation.store import Store
from curation.store import annotations as astore
from curation.store import models as mstore
from curation.store import releases as rstore
from curation.store import users as ustore


@dataclass(frozen=True)
class Snapshot:
    """Everything a build reads, consistent with one moment of the store."""

    questions: pa.Table  # with the traces of `meta` (`store.releases.TRACE_FIELDS`)
    aliases: pa.Table  # alias_id -> question_id: ids merged at ingest as exact duplicates
    predictions: pa.Table  # of `model` (empty without one)
    human: list[dict[str, Any]]  # people's current labels (the raters), every question
    reference: list[dict[str, Any]]  # imported benchmark tags (a reference, not raters)
    gold_human: list[dict[str, Any]]  # `store.annotations.gold_labels`: what `curation agreement` reads
    adjudications: dict[str, str]  # question_id -> latest adjudicated label
    gold: frozenset[str]
    batches: list[dict[str, Any]]
    model: dict[str, Any] | None
    seen: frozenset[str]  # question ids `model` trained or validated on
    store_info: dict[str, Any]
    expertise: dict[str, str]  # username -> annotation expertise (`store.users.expertise_by_user`)
    releases: dict[str, str]  # recorded release version -> the folder it was built into


def _model(con: duckdb.DuckDBPyConnection, name: str | None) -> dict[str, Any] | None:
    m = mstore.current_model(con, name=name, scored=name is None)
    if name is not None and not mstore.predictions(con, name):
        raise NotFoundError(f"model {name!r} has no predictions; score the questions with it first")
    return m


def take_snapshot(store: Store, model: str | None = None) -> Snapshot:
    """Read what a release needs in one transaction. `model`: a version (imported ones
    allowed by name); default the current scored model (`store.models.current_model`)."""

    def work(con: duckdb.DuckDBPyConnection) -> Snapshot:
        m = _model(con, model)
        version = m["version"] if m else None
        return Snapshot(
            questions=rstore.question_table(con),
            aliases=rstore.alias_table(con),
            predictions=rstore.prediction_table(con, version),
            human=astore.current_labels(con),
            reference=astore.current_labels(con, origin="reference"),
            gold_human=astore.gold_labels(con),
            adjudications={q: a["label"] for q, a in astore.current_adjudications(con).items()},
            gold=frozenset(mstore.gold_ids(con)),
            batches=rstore.batch_table(con).to_pylist(),
            model=m,
            seen=frozenset(mstore.seen_ids(con, version)) if version else frozenset(),
            store_info=rstore.store_info(con),
            expertise=ustore.expertise_by_user(con),
            releases=rstore.release_paths(con),
        )

    return store.run(work)
