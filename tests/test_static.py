"""Static rules over the repository: SQL only with parameters, no secrets committed (the import graph:
tests/test_imports.py).

- **SQL lint**: the statement passed to ``execute`` / ``executemany`` / ``copy`` is never built
  from strings at run time (f-string, ``+``, ``%``, ``str.format``, ``join``); values go in as
  parameters, identifiers through ``psycopg.sql`` (``sql.SQL(...).format(sql.Identifier(...))``).
- **secrets scanner**: no AWS access key, private key, password-bearing DSN or assigned password
  literal in any tracked file.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from conftest import ROOT

SQL_CALLS = {"execute", "executemany", "copy"}


def tracked_files(*suffixes: str) -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if not suffixes or f.endswith(suffixes)]


def is_psycopg_sql(node: ast.AST) -> bool:
    """``sql.SQL(...)``, ``psycopg.sql.SQL(...)`` and their ``.format(...)`` / ``.join(...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "SQL":
            return True
        if node.func.attr in {"format", "join"}:
            return is_psycopg_sql(node.func.value)
    return False


def built_at_run_time(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"format", "join"}:
        return not is_psycopg_sql(node)
    return False


def sql_violations(source: str, filename: str) -> list[str]:
    """Calls whose statement is built from strings, and module constants that are (a name passed to
    ``execute`` is checked through its assignment)."""
    tree = ast.parse(source, filename)
    assigned = {t.id: node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS and node.args):
            continue
        statement = node.args[0]
        if isinstance(statement, ast.Name) and statement.id in assigned:
            statement = assigned[statement.id]
        if built_at_run_time(statement):
            found.append(f"{filename}:{node.lineno}: SQL statement built from strings; use parameters or psycopg.sql")
    return found


@pytest.mark.parametrize("snippet", [
    'conn.execute(f"SELECT * FROM t WHERE id = {x}")',
    'conn.execute("SELECT * FROM t WHERE id = " + x)',
    'conn.execute("SELECT * FROM t WHERE id = %s" % x)',
    'conn.execute("SELECT * FROM {}".format(table))',
    'Q = f"DELETE FROM t WHERE id = {x}"\nconn.execute(Q)',
    'cur.executemany(" ".join(parts), rows)',
])
def test_sql_lint_flags_statements_built_from_strings(snippet):
    assert sql_violations(snippet, "snippet.py")


@pytest.mark.parametrize("snippet", [
    'conn.execute("SELECT * FROM t WHERE id = %s", (x,))',
    'Q = "SELECT 1"\nconn.execute(Q)',
    'conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))',
    'cur.copy(psycopg.sql.SQL("COPY t ({}) FROM STDIN").format(psycopg.sql.SQL(", ").join(cols)))',
])
def test_sql_lint_accepts_parameters_and_psycopg_sql(snippet):
    assert sql_violations(snippet, "snippet.py") == []


def test_repository_sql_is_parameterised():
    files = tracked_files(".py")
    assert len(files) > 50
    violations = [v for f in files for v in sql_violations((ROOT / f).read_text(encoding="utf-8"), f)]
    assert violations == []


# --- secrets ------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "password in a connection URI": re.compile(r"\b(?:postgres(?:ql)?|mysql|kafka)://[^\s:/@'\"]+:[^\s@'\"{}$<]+@"),
    "password in a key=value DSN": re.compile(r"\b(?:host|user|dbname)=\S+[^\n]*\bpassword=(?![{$<%])[^\s'\"]{4,}"),
    "password assigned a literal": re.compile(r"\b(?:password|passwd|secret)\s*[:=]\s*['\"][^'\"{}$<%\s]{6,}['\"]", re.I),
}
# Deliberately fake values (AWS's documented EXAMPLE keys, test canaries) are not findings.
FAKE = re.compile(r"canary|fake|example", re.I)


def secret_findings(text: str, filename: str) -> list[str]:
    return [f"{filename}:{text.count(chr(10), 0, m.start()) + 1}: {name}"
            for name, pattern in SECRET_PATTERNS.items() for m in pattern.finditer(text) if not FAKE.search(m.group())]


# Built at run time, so this file's own text holds none of them.
@pytest.mark.parametrize("text", [
    "aws_access_key_id = " + "AKIA" + "Q3ZL7TBD2M5XW4HN",
    "dsn: postgresql://fraud:" + "hunter2secret@db.internal:5432/fraud",
    "host=db user=fraud pass" + "word=hunter2secret dbname=fraud",
    "PASSWORD = " + '"correct-horse-battery"',
    "-----BEGIN RSA " + "PRIVATE KEY-----",
])
def test_secret_scanner_finds_planted_secrets(text):
    assert secret_findings(text, "planted")


def test_no_secrets_in_the_repository():
    findings = []
    for f in tracked_files():
        path = ROOT / f
        if path.suffix in {".png", ".jar", ".ico"} or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings += secret_findings(text, f)
    assert findings == []
