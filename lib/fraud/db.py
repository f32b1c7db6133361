"""PostgreSQL: where it is, one connection pool, versioned migrations.

Every statement is parameterised; identifiers go through ``psycopg.sql``.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from fraud import roles
from fraud.cli import UserError
from fraud.config import IAM, LOCAL_STACK, Config, endpoint
from fraud.secrets import reread_passwords

log = logging.getLogger(__name__)

# Serialises concurrent migrators (two jobs starting at once).
_MIGRATION_LOCK_ID = 0x46524155  # "FRAU"


def postgres_dsn(config: Config, component: str) -> str:
    """The DSN ``component`` (``fraud.roles.COMPONENTS``) connects with, as its own login role:
    locally with the password in the stack's pgpass file, in AWS with an RDS IAM token (both in a
    password file libpq reads at each connection, never in the DSN)."""
    user = roles.login(component)
    base = endpoint(config.postgres.dsn, "postgres")
    params = {"user": user}
    if config.postgres.ssl_root_cert:
        params["sslrootcert"] = config.postgres.ssl_root_cert
    if config.postgres.auth == IAM:
        from fraud.secrets import iam_token_file

        parsed = psycopg.conninfo.conninfo_to_dict(base)
        params["passfile"] = iam_token_file(parsed["host"], int(parsed.get("port", 5432)), user)
    return psycopg.conninfo.make_conninfo(base, **params)


def admin_dsn(config: Config) -> str:
    """The admin's DSN, for migrations only: the local stack's superuser; in AWS the RDS master with
    the password of its managed secret (``postgres.admin_secret_arn``); on a server of your own,
    ``postgres.admin_user`` with the password libpq finds (the DSN's passfile, ~/.pgpass)."""
    if config.postgres.dsn == LOCAL_STACK:
        return endpoint(LOCAL_STACK, "postgres")
    arn = config.postgres.admin_secret_arn
    if arn:
        from fraud.secrets import password_file, secret_field

        params = {"user": secret_field(arn, "username"), "passfile": password_file(arn)}
    elif config.postgres.admin_user:
        params = {"user": config.postgres.admin_user}
    else:
        raise UserError("neither postgres.admin_secret_arn nor postgres.admin_user is set:"
                        " migrations run as the database's admin")
    if config.postgres.ssl_root_cert:
        params["sslrootcert"] = config.postgres.ssl_root_cert
    return psycopg.conninfo.make_conninfo(config.postgres.dsn, **params)


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    """One connection, with a one-line error instead of a traceback when the server is unreachable."""
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.OperationalError as err:
        raise UserError(f"cannot connect to PostgreSQL ({_redact(dsn)}): {str(err).strip().splitlines()[-1]}")


def make_pool(config: Config, dsn: str) -> ConnectionPool:
    """The process's connection pool to ``dsn`` (``postgres_dsn``); the caller closes it."""
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=config.postgres.pool_max_size,
        kwargs={"connect_timeout": config.postgres.connect_timeout_s},
        # Not the 30 s default: during an outage each retry (fraud.db.RetryPolicy) waits this long.
        timeout=config.postgres.connect_timeout_s * 2,
        open=False,
    )
    pool.open(wait=True, timeout=config.postgres.connect_timeout_s * 2)
    return pool


T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for one unit of PostgreSQL work (config ``alerts``):
    a connection killed or a server restarting is retried in-process; an outage longer than the
    backoff sum fails the batch (``fraud.stream`` then waits for the server and resumes)."""

    retries: int
    backoff_s: float

    @classmethod
    def of(cls, config: Config) -> "RetryPolicy":
        return cls(config.alerts.max_retries, config.alerts.retry_backoff_s)

    def run(self, pool: ConnectionPool, work: Callable[[psycopg.Connection], T], what: str) -> T:
        """``work(conn)`` on a pooled connection, again on a fresh one after an OperationalError."""
        def attempt() -> T:
            with pool.connection() as conn:
                return work(conn)

        return self.call(attempt, what)

    def call(self, attempt: Callable[[], T], what: str) -> T:
        """``attempt()``, retried after an OperationalError; the last one propagates."""
        for n in range(self.retries + 1):
            try:
                return attempt()
            except psycopg.OperationalError as err:
                reread_passwords()  # the secret may have rotated
                if n == self.retries:
                    raise
                delay = self.backoff_s * 2 ** n
                log.warning("%s: PostgreSQL unavailable (%s); retry %d/%d in %.1f s",
                            what, type(err).__name__, n + 1, self.retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


NO_RETRY = RetryPolicy(0, 0.0)


def migration_files() -> list:
    return sorted((f for f in resources.files("fraud.migrations").iterdir() if f.name.endswith(".sql")),
                  key=lambda f: f.name)


def migrate(admin_dsn: str, *, iam: bool = False) -> list[str]:
    """As the admin: the roles (``fraud.roles``), then, as the owner, the SQL files in
    ``fraud/migrations`` not applied yet, in order, each in its own transaction, and the grants."""
    applied_now = []
    with connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_ID,))
        try:
            roles.ensure_roles(conn, iam=iam)
            roles.prepare_database(conn, conn.info.dbname)
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.OWNER)))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for sql_file in migration_files():
                version = sql_file.name.removesuffix(".sql")
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql_file.read_text())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                log.info("applied migration %s", version)
                applied_now.append(version)
            roles.apply_grants(conn)
        finally:
            conn.execute("RESET ROLE")
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_ID,))
    return applied_now


def require_schema(dsn: str) -> None:
    """Refuse to start on a database whose schema lags the code (migrations are the admin's)."""
    with connect(dsn) as conn:
        try:
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        except psycopg.errors.UndefinedTable:
            done = set()
    missing = [f.name.removesuffix(".sql") for f in migration_files() if f.name.removesuffix(".sql") not in done]
    if missing:
        raise UserError(f"the database lacks migration {missing[0]} ({len(missing)} pending):"
                        " run jobs/migrate.py as its admin (make up does it locally)")


def _redact(dsn: str) -> str:
    """Host, port and database of a DSN, never its password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "unparseable DSN"
    return f"{params.get('host', '?')}:{params.get('port', '5432')}/{params.get('dbname', '?')}"
