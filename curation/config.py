"""Settings: explicit arguments first, environment variables as defaults, read when called."""

from __future__ import annotations

import math
import os
from pathlib import Path

from curation.errors import ConfigError

DEFAULT_DB = "curation.duckdb"


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The store file: `explicit`, else `$CURATION_DB`, else `./curation.duckdb`."""
    value = explicit if explicit not in (None, "") else os.environ.get("CURATION_DB") or DEFAULT_DB
    return Path(value)  # type: ignore[arg-type]


def lock_timeout_seconds(explicit: float | None = None) -> float:
    """How long to wait for the store while another process holds it: `explicit`, else
    `$CURATION_LOCK_TIMEOUT`, else 120 s (`inf`: no limit)."""
    if explicit is None:
        raw = os.environ.get("CURATION_LOCK_TIMEOUT", "").strip() or "120"
        try:
            explicit = float(raw)
        except ValueError:
            explicit = math.nan
        if math.isnan(explicit) or explicit < 0:
            raise ConfigError(
                f"CURATION_LOCK_TIMEOUT={raw!r} is not a number of seconds >= 0 (e.g. 120)"
            )
    if math.isnan(explicit) or explicit < 0:
        raise ConfigError(f"lock timeout must be a number of seconds >= 0, got {explicit}")
    return explicit


def require_env(name: str, explicit: str | None = None, *, option: str | None = None) -> str:
    """Return `explicit` or the environment variable `name`; raise naming both if missing."""
    if explicit:
        return explicit
    value = os.environ.get(name)
    if not value:
        hint = f"pass {option} or set {name}" if option else f"set {name}"
        raise ConfigError(f"missing setting: {hint}")
    return value


def labeling_config_dir() -> Path:
    """`labeling_config/` (Label Studio XML configs, the annotation guidelines): inside the
    package as `curation/labeling_config`, a link to the checkout's top-level folder that
    the wheel ships as real files, so a source checkout and an installed wheel find it alike."""
    return Path(__file__).resolve().parent / "labeling_config"
