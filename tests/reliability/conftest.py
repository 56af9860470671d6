"""Fixtures of the reliability tests; the helpers live in `relkit.py`."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from relkit import planted_env  # noqa: E402,F401  (fixture)
