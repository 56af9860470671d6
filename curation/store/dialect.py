"""The store's SQL is written once, in the dialect DuckDB and PostgreSQL share; this module
turns a statement into PostgreSQL's spelling where the two still differ. It is text in,
text out (no connection), and every rule is listed here:

- placeholders: DuckDB's `?` and `$name` become psycopg's `%s` and `%(name)s`; a literal
  `%` is doubled (outside string literals, identifiers and comments);
- `x IN (SELECT unnest(?))` (a Python list bound as one parameter) becomes `x = ANY(%s)`;
- in DDL, `DOUBLE` becomes `DOUBLE PRECISION` and `JSON` becomes `TEXT`: JSON columns hold
  the exact text written (as DuckDB's JSON type does), so both stores read back the same
  string and a release built from either is byte-identical.

Anything else DuckDB-only (`arg_max`, `list(...)`, `INSERT OR REPLACE`, `SEMI JOIN`,
`QUALIFY`) is not translated: the store modules do not use it (a test runs every store
query on a real PostgreSQL server).
"""

from __future__ import annotations

import re
from functools import lru_cache

_UNNEST = re.compile(r"\bIN\s*\(\s*SELECT\s+unnest\((%s|%\(\w+\)s)\)\s*\)", re.IGNORECASE)
_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)", re.IGNORECASE)
_JSON = re.compile(r"\bJSON\b", re.IGNORECASE)
_DDL = re.compile(r"^\s*(CREATE|ALTER)\b", re.IGNORECASE)


def _placeholders(sql: str) -> str:
    """`?` -> `%s`, `$name` -> `%(name)s`, `%` -> `%%`, outside quotes and comments."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):  # a string literal or a quoted identifier ('' and "" escape)
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1].replace("%", "%%"))
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        elif c == "$" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            m = re.match(r"\$([A-Za-z_]\w*)", sql[i:])
            assert m is not None
            out.append(f"%({m.group(1)})s")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


@lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    """`sql` as PostgreSQL (through psycopg) spells it; see the module docstring."""
    text = _UNNEST.sub(r"= ANY(\1)", _placeholders(sql))
    if _DDL.match(text):
        text = _JSON.sub("TEXT", _DOUBLE.sub("DOUBLE PRECISION", text))
    return text
