"""Score texts on a Ray cluster (`curation classify --engine ray`): the one module that imports Ray.

Ray is an optional extra (``pip install "curation[ray]"``); without it `require_ray` raises
an error that says so. `score` splits the texts, each carrying its row number, into Arrow
blocks (`ray.data.from_arrow`) and maps them over an actor pool
(`Dataset.map_batches(_Scorer, compute=ActorPoolStrategy(size=actors))`): each actor loads
the model folder once (`curation.model.load`) and scores one block at a time with the same
`Classifier.predict_proba` as the single-process path. The probabilities are put back at
their row numbers as blocks stream back, in whatever order they finish (`collect`). An
actor asks for one GPU when the model is a transformer and the cluster has GPUs (Ray then
shows it exactly that GPU, and ``--device auto`` picks it), else one CPU. The numbers are
the local path's: equal for tfidf, within 1e-6 in float32 (a transformer's batches are cut
per block, so padding differs); in bf16 (``--device auto`` on a GPU or an AMX CPU) the two
paths differ by up to ~1e-4 (`benchmarks/classify_speed.py --engine ray` reports it).

The cluster: ``address`` (``auto``, ``ray://host:10001``, ``host:6379``; else
``RAY_ADDRESS``) connects to a running one, whose nodes need this package and the model
folder at the same path; without one a local cluster is started with ``num_cpus = actors``
(no dashboard, workers' logs not echoed). A cluster this process connected to is
disconnected afterwards (a started one stops); one the caller initialised (a test's, a
notebook's) is left as it was. Ray's fixed costs: ~8 s to start a local cluster, then
seconds per job (actors start, each imports torch and loads the model), so the
single-process path stays the default (`benchmarks/classify_speed.py --engine ray`
measures the crossover).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from curation.errors import ConfigError, InputError

RAY_EXTRA = 'pip install "curation[ray]"'
ROWS_PER_BLOCK = 1024  # texts an actor scores per Ray task (then sorted by length in batches of `batch_size`)

Progress = Any  # Callable[[str, int, int], None] | None


def require_ray() -> Any:
    """The `ray` module with Ray Data, or a `ConfigError` that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra)
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray with Ray Data ({exc.name} is not installed): {RAY_EXTRA}") from exc
    return ray


class _Scorer:
    """One per Ray actor: the model folder is loaded once, then every block is scored."""

    def __init__(self, model_dir: str, device: str, batch_size: int) -> None:
        from curation import model as M

        self.clf = M.load(model_dir, device=device)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        probs = self.clf.predict_proba([str(t) for t in batch["text"]], batch_size=self.batch_size)
        return {"row": np.asarray(batch["row"], dtype=np.int64), "prob": np.asarray(probs, dtype=np.float64)}


@contextlib.contextmanager
def cluster(address: str | None = None, *, actors: int = 1) -> Iterator[Any]:
    """Ray, connected: to `address`, else to a local cluster started here with `actors` CPUs."""
    ray = require_ray()
    if ray.is_initialized():  # the caller's cluster: use it, leave it running
        yield ray
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = address or os.environ.get("RAY_ADDRESS")  # what `ray.init()` itself would join
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--address {address}: cannot connect to a Ray cluster ({exc}); start one with "
                              "`ray start --head` or leave --address out for a local cluster") from exc
    else:
        ray.init(num_cpus=actors, include_dashboard=False, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def _quiet_data(ray: Any) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # not "progress bars disabled" either


def block_size(n: int, actors: int) -> int:
    """Rows per Ray task: at least 4 tasks per actor (so no actor idles while another holds
    the last big block), at most `ROWS_PER_BLOCK`."""
    return max(1, min(ROWS_PER_BLOCK, math.ceil(n / (4 * actors))))


def collect(batches: Iterable[dict[str, np.ndarray]], n: int, progress: Progress = None) -> np.ndarray:
    """Put each `{row, prob}` batch's probabilities at their row numbers, in whatever order the
    batches arrive; every row exactly once, or an error."""
    probs = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    done = 0
    for out in batches:
        rows = np.asarray(out["row"], dtype=np.int64)
        probs[rows] = out["prob"]
        np.add.at(count, rows, 1)
        done += len(rows)
        if progress:
            progress("score", min(done, n), n)
    if not (count == 1).all():
        raise RuntimeError(f"Ray returned {done} scores for {n} texts: {int((count == 0).sum())} missing, "
                           f"{int((count > 1).sum())} twice")
    return probs


def score(
    model_dir: str,
    texts: Sequence[str],
    *,
    kind: str,
    address: str | None = None,
    actors: int = 1,
    batch_size: int = 64,
    device: str = "auto",
    rows_per_block: int | None = None,
    progress: Progress = None,
) -> np.ndarray:
    """Calibrated p(reasoning) per text, in input order, scored by `actors` Ray actors that
    each load `model_dir` (a `kind` = ``transformer`` model gets one GPU per actor when the
    cluster has GPUs), `rows_per_block` texts per task (default `block_size`)."""
    if actors < 1:
        raise InputError(f"--actors must be >= 1, got {actors}")
    n = len(texts)
    if n == 0:
        return np.zeros((0,))
    size = rows_per_block or block_size(n, actors)
    import pyarrow as pa

    table = pa.table({"row": pa.array(np.arange(n, dtype=np.int64)), "text": pa.array(list(texts), pa.large_string())})
    blocks = [table.slice(a, size) for a in range(0, n, size)]
    with cluster(address, actors=actors) as ray:
        _quiet_data(ray)
        gpus = 1 if kind == "transformer" and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        ds = ray.data.from_arrow(blocks).map_batches(
            _Scorer, fn_constructor_kwargs={"model_dir": str(model_dir), "device": device, "batch_size": batch_size},
            batch_size=size, compute=ray.data.ActorPoolStrategy(size=actors), batch_format="numpy",
            **({"num_gpus": gpus} if gpus else {"num_cpus": 1}),
        )
        return collect(ds.iter_batches(batch_size=None, batch_format="numpy"), n, progress)
