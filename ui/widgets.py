"""Page helpers shared by the labeling and maintainer pages: the keyboard glue (Esc leaves a
text box, a pinned action bar) and readable tables (human headers, formatted numbers, no
"None", small samples flagged).

Streamlit's own shortcut handler already keeps plain keys (`1`, `2`, `S`, `U`) out of text
boxes and lets Ctrl/Cmd combinations through, so `Ctrl+Enter` works from inside a field; what
it lacks is a way out of a field: `keyboard_glue` adds one (Esc blurs it, which also commits
the typed value, as leaving a Streamlit text box always does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

SMALL_N = 30
"""Below this many items a bootstrap CI is not to be trusted (it can even collapse to one
value, e.g. [1.000, 1.000] when every resample of two agreeing items agrees): flagged."""
SMALL_N_MARK = "⚠"
MISSING = "—"

_ESC_LEAVES_FIELDS = """<script>
(() => {
  const w = window.parent && window.parent.document ? window.parent : window;
  if (w.__curationEsc) return;
  w.__curationEsc = true;
  w.document.addEventListener("keydown", (e) => {
    const el = w.document.activeElement;
    if (e.key === "Escape" && el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA")) {
      el.blur();
    }
  }, true);
})();
</script>"""


def keyboard_glue(*, pinned: str | None = None) -> None:
    """Esc leaves a text box (so `1`/`2` label again); `pinned`: a container key whose
    container stays at the top of the window while the page scrolls (the action bar)."""
    st.html(_ESC_LEAVES_FIELDS, unsafe_allow_javascript=True)
    if pinned:
        st.html(
            # Streamlit wraps a keyed container in a layout wrapper of the same height: the
            # wrapper is what must stick (a sticky box cannot leave its parent's box)
            f'<style>[data-testid="stLayoutWrapper"]:has(> .st-key-{pinned}) {{position: sticky; '
            "top: 3.75rem; z-index: 999; background-color: var(--st-background-color, #fff); "
            "padding: 0.4rem 0 0.2rem 0;}</style>"
        )


def num(value: float | None, digits: int = 3) -> str:
    """A number for a table cell: fixed digits, `MISSING` for none/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    return f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    return f"{value:.{digits}%}"


def ci(lo: float | None, hi: float | None, digits: int = 3) -> str:
    """`[lo, hi]`, or `MISSING` when the interval could not be computed."""
    if lo is None or hi is None:
        return MISSING
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def n_items(n: int | None) -> str:
    """An item count, flagged with `SMALL_N_MARK` below `SMALL_N`."""
    if n is None:
        return MISSING
    return f"{SMALL_N_MARK} {n}" if n < SMALL_N else str(n)


def when(value: datetime | None) -> str:
    return MISSING if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return MISSING
    return str(value)


Column = tuple[str, str, Callable[[Any], str]]
"""(row key, header, formatter)."""


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column]) -> pd.DataFrame:
    """Rows as a table of display strings: the headers given, every cell formatted (no
    "None", no raw floats)."""
    return pd.DataFrame(
        [{header: fmt(r.get(key)) for key, header, fmt in columns} for r in rows],
        columns=[header for _key, header, _fmt in columns],
    )


def small_n_caption(n_values: Iterable[int | None]) -> str | None:
    """A caption explaining the small-n mark, if any count shown is below `SMALL_N`."""
    if not any(n is not None and n < SMALL_N for n in n_values):
        return None
    return (f"{SMALL_N_MARK} fewer than {SMALL_N} items: the bootstrap 95 % CI is not reliable. "
            "With few items every resample can give the same value, so an interval such as "
            "[1.000, 1.000] means too little data, not certainty.")


def show_table(df: pd.DataFrame, **kwargs: Any) -> None:
    st.dataframe(df, hide_index=True, width="stretch", **kwargs)
