"""The one translation from the store's SQL to PostgreSQL's spelling (curation.store.dialect)."""

from __future__ import annotations

import pytest

from curation.store.dialect import to_postgres
from curation.store.postgres import redact


@pytest.mark.parametrize(("duck", "pg"), [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT * FROM t WHERE a = $x AND b = $x_2", "SELECT * FROM t WHERE a = %(x)s AND b = %(x_2)s"),
    # a literal % is doubled, in and out of quotes; ? and $ inside quotes stay text
    ("SELECT 'a?b$c%' LIKE x || '%' FROM t", "SELECT 'a?b$c%%' LIKE x || '%%' FROM t"),
    ("SELECT 'it''s ?' AS \"col?\" FROM t WHERE a = ?", "SELECT 'it''s ?' AS \"col?\" FROM t WHERE a = %s"),
    ("SELECT 1 -- why? 100%\nFROM t WHERE a = ?", "SELECT 1 -- why? 100%%\nFROM t WHERE a = %s"),
    ("SELECT id FROM q WHERE id IN (SELECT unnest(?))", "SELECT id FROM q WHERE id = ANY(%s)"),
    ("SELECT id FROM q WHERE id in ( select unnest($t) )", "SELECT id FROM q WHERE id = ANY(%(t)s)"),
    # types are changed in DDL only
    ("CREATE TABLE t (x DOUBLE, m JSON, y DOUBLE PRECISION)",
     "CREATE TABLE t (x DOUBLE PRECISION, m TEXT, y DOUBLE PRECISION)"),
    ("ALTER TABLE t ADD COLUMN lead_time DOUBLE", "ALTER TABLE t ADD COLUMN lead_time DOUBLE PRECISION"),
    ("SELECT 'JSON' AS kind, 'DOUBLE' FROM t", "SELECT 'JSON' AS kind, 'DOUBLE' FROM t"),
])
def test_to_postgres(duck: str, pg: str) -> None:
    assert to_postgres(duck) == pg


def test_the_password_of_a_url_is_never_shown() -> None:
    assert redact("postgresql://ann:pa%40ss@db.example:5433/cur") == "postgresql://ann:***@db.example:5433/cur"
    assert redact("postgresql://ann@db/cur") == "postgresql://ann@db/cur"
