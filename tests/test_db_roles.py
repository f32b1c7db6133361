"""The database's roles on the real PostgreSQL: each component's login can do what ``fraud.roles``
grants it and nothing else; migrations leave the grants exact and the owner owning every table."""

import psycopg
import pytest
from psycopg import sql

from fraud.cli import UserError
from fraud.db import migrate, migration_files, require_schema
from fraud.roles import COMPONENTS, GRANTS, OWNER, login
from pipeline_support import as_role, create_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dsn(stack):
    import uuid

    return create_database(stack["postgres"]["dsn"], f"roles_{uuid.uuid4().hex[:8]}")


def refused(dsn: str, component: str, statement: str, params=()) -> bool:
    """True if ``component``'s login is refused the statement for lack of privilege (rolled back either way)."""
    with psycopg.connect(as_role(dsn, component)) as conn:
        try:
            conn.execute(statement, params)
        except psycopg.errors.InsufficientPrivilege:
            return True
        finally:
            conn.rollback()
    return False


@pytest.mark.parametrize("statement", [
    "CREATE TABLE stolen (x int)",
    "DROP TABLE alerts",
    "ALTER TABLE alerts ADD COLUMN x int",
    "ALTER TABLE alert_transactions DROP COLUMN amount",
    "TRUNCATE sink_progress",
    "CREATE INDEX stolen ON alerts (actor_id)",
    "SELECT * FROM alert_actions",       # who did what in the Dash app: the analysts' audit trail
    "DELETE FROM alerts",
    "UPDATE model_versions SET is_current = true",
    "UPDATE alerts SET status = 'open'",        # the analysts' columns of an alert
    "UPDATE alerts SET analyst_note = 'x'",
    "INSERT INTO simulation_runs (test_id, started_at, domains, seed) VALUES ('x', now(), '{gaming}', 1)",
])
def test_the_streaming_jobs_role_cannot_change_the_schema_or_read_the_dash_data(dsn, statement):
    assert refused(dsn, "stream", statement)


def test_each_role_does_its_work_and_is_refused_the_rest(dsn):
    alert = ("a-1", "gaming", "ga-1", "fraud_bot")
    insert_alert = ("INSERT INTO alerts (alert_id, domain, actor_id, alert_type, episode_start, first_seen, last_seen,"
                    " txn_count, total_amount, max_score, severity, class_probabilities, model_version)"
                    " VALUES (%s, %s, %s, %s, now(), now(), now(), 1, 1, 0.9, 'low', '{}', 'v1')")
    assert not refused(dsn, "stream", insert_alert, alert)
    with psycopg.connect(as_role(dsn, "stream")) as conn:
        conn.execute(insert_alert, alert)  # committed: the others' statements below act on it
    # The Dash app: a verdict (alerts, alert_actions and its sequence), but no deletion and no schema.
    assert not refused(dsn, "dash", "INSERT INTO alert_actions (alert_id, action, note, actor) VALUES"
                                    " ('a-1', 'confirm_fraud', '', 'ana')")
    assert not refused(dsn, "dash", "UPDATE alerts SET status = 'confirmed_fraud', status_by = 'ana'")
    assert refused(dsn, "dash", "UPDATE alerts SET txn_count = 0")  # the stream's figures
    assert refused(dsn, "dash", "DELETE FROM alerts")
    assert refused(dsn, "dash", "INSERT INTO sink_progress (query_id, batch_id) VALUES ('q', 1)")
    # The model pointer: its columns of a version's row and a record of who moved it, nothing else.
    version_row = ("INSERT INTO model_versions (version, created_at, metrics, features, training_data)"
                   " VALUES ('v0042', now(), '{}', '[]', '{}')")
    assert refused(dsn, "dash", version_row)
    assert not refused(dsn, "batch", version_row)
    with psycopg.connect(as_role(dsn, "batch")) as conn:
        conn.execute(version_row)
    assert not refused(dsn, "dash", "UPDATE model_versions SET is_current = true, promoted_at = now(),"
                                    " promoted_by = 'root@example.com' WHERE version = 'v0042'")
    assert refused(dsn, "dash", "UPDATE model_versions SET metrics = '{\"macro_f1\": 1}' WHERE version = 'v0042'")
    assert not refused(dsn, "dash", "INSERT INTO model_pointer_changes (action, version, actor)"
                                    " VALUES ('promote', 'v0042', 'root@example.com')")
    assert refused(dsn, "dash", "DELETE FROM model_pointer_changes")
    assert refused(dsn, "dash", "INSERT INTO model_pointer_changes (action, version, actor, at)"
                                " VALUES ('promote', 'v0042', 'root@example.com', now() - interval '1 year')")
    # The simulator writes its ground truth and reads nothing the job or analysts wrote.
    assert not refused(dsn, "simulator", "INSERT INTO simulation_runs (test_id, started_at, domains, seed)"
                                         " VALUES ('t', now(), '{gaming}', 1)")
    assert refused(dsn, "simulator", "SELECT * FROM alerts")
    # Batch jobs expire and archive (DELETE) but never raise or edit an alert.
    assert not refused(dsn, "batch", "DELETE FROM alerts WHERE alert_id = 'none'")
    assert refused(dsn, "batch", "UPDATE alerts SET status = 'open'")
    assert refused(dsn, "batch", "INSERT INTO alert_actions (alert_id, action, note, actor) VALUES"
                                 " ('a-1', 'confirm_fraud', '', 'ana')")


def test_the_grants_are_exactly_the_declared_ones_and_no_table_is_forgotten(dsn):
    assert_grants_exact(dsn)


def assert_grants_exact(dsn: str) -> None:
    """Every table owned by the owner, used by some component, and each login's privileges exactly
    ``GRANTS`` (table and column grants alike)."""
    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")}
        owners = {r[0] for r in conn.execute("SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'")}
        logins = [login(c) for c in COMPONENTS]
        granted = {}
        for grantee, table, privilege in conn.execute(
                "SELECT grantee::text, table_name::text, privilege_type::text FROM information_schema.role_table_grants"
                " WHERE table_schema = 'public' AND grantee = ANY(%s)", (logins,)):
            granted.setdefault(grantee, {}).setdefault(table, set()).add(privilege)
        # Column grants (an UPDATE or INSERT of some columns): those not implied by a grant on the table.
        for grantee, table, privilege, columns in conn.execute(
                "SELECT grantee::text, table_name::text, privilege_type::text,"
                " array_agg(column_name::text ORDER BY column_name) FROM information_schema.column_privileges"
                " WHERE table_schema = 'public' AND grantee = ANY(%s) AND privilege_type IN ('UPDATE', 'INSERT')"
                " GROUP BY 1, 2, 3", (logins,)):
            if privilege not in granted.get(grantee, {}).get(table, set()):
                granted.setdefault(grantee, {}).setdefault(table, set()).add(f"{privilege} ({', '.join(columns)})")
    assert owners == {OWNER}
    assert tables == {t for grants in GRANTS.values() for t in grants}, "a table no component may use, or a grant on none"

    def declared(privilege: str) -> str:  # column lists in name order, as the catalog gives them
        if "(" not in privilege:
            return privilege
        kind, columns = privilege.split(" (", 1)
        return f"{kind} ({', '.join(sorted(columns[:-1].split(', ')))})"

    assert granted == {login(c): {t: {declared(p) for p in ps} for t, ps in GRANTS[c].items()} for c in COMPONENTS}


def test_a_database_migrated_before_the_roles_is_taken_over(stack):
    """Tables the admin created (the schema before roles) end owned by the owner, with the grants."""
    import uuid

    name = f"roles_old_{uuid.uuid4().hex[:8]}"
    admin = stack["postgres"]["dsn"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    old = psycopg.conninfo.make_conninfo(admin, dbname=name)
    first = migration_files()[0]
    with psycopg.connect(old, autocommit=True) as conn:  # the first migration, as the admin applied it then
        conn.execute(first.read_text())
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz"
                     " NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (first.name.removesuffix(".sql"),))
    applied = migrate(old)
    assert applied == [f.name.removesuffix(".sql") for f in migration_files()[1:]]
    with psycopg.connect(old) as conn:
        assert {r[0] for r in conn.execute("SELECT DISTINCT tableowner::text FROM pg_tables"
                                           " WHERE schemaname = 'public'")} == {OWNER}
    assert not refused(old, "simulator", "INSERT INTO simulation_runs (test_id, started_at, domains, seed)"
                                         " VALUES ('t', now(), '{gaming}', 1)")


def test_a_component_refuses_a_schema_that_lags_the_code(stack):
    import uuid

    name = f"roles_empty_{uuid.uuid4().hex[:8]}"
    admin = stack["postgres"]["dsn"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with pytest.raises(UserError) as err:
        require_schema(as_role(psycopg.conninfo.make_conninfo(admin, dbname=name), "stream"))
    assert f"lacks migration {migration_files()[0].name.removesuffix('.sql')}" in str(err.value)
    assert "jobs/migrate.py" in str(err.value)


def test_the_admin_step_sets_up_a_fresh_database_and_the_topics_once(stack, tmp_path, capsys):
    """``jobs/migrate.py``: the roles, every migration and the grants on an empty database, and the
    config's topics (brokers never auto-create them); a second run changes nothing."""
    import importlib.util
    import uuid

    from confluent_kafka.admin import AdminClient

    from fraud_devstack.process import wait_until
    from pipeline_support import ROOT, without_user, write_config

    tag = uuid.uuid4().hex[:8]
    admin = stack["postgres"]["dsn"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"setup_{tag}")))
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=f"setup_{tag}")
    topics = {d: f"{d}-setup-{tag}" for d in ("gaming", "fintech", "ecommerce")}
    config = write_config(tmp_path / "conf.yaml", topics=topics, dsn=without_user(dsn),
                          bootstrap=stack["kafka"]["bootstrap"], lake=tmp_path / "lake", checkpoints=tmp_path / "ck",
                          postgres__admin_user="fraud")  # the stack's superuser
    spec = importlib.util.spec_from_file_location("migrate_job", ROOT / "jobs" / "migrate.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)

    assert job.main(["--config", str(config)]) == 0
    first = capsys.readouterr().out
    assert f"applied {len(migration_files())} migration(s)" in first and "created 3 topic(s)" in first
    admin_client = AdminClient({"bootstrap.servers": stack["kafka"]["bootstrap"]})

    def partitions() -> dict:
        found = admin_client.list_topics(timeout=10).topics
        return {t: len(found[t].partitions) if t in found else 0 for t in topics.values()}

    # The broker's metadata catches up with the controller's creation shortly after.
    assert wait_until(lambda: partitions() == {t: 3 for t in topics.values()}, 30), partitions()
    require_schema(as_role(dsn, "stream"))  # the job may start
    assert job.main(["--config", str(config)]) == 0
    assert "applied 0 migration(s); roles and grants set; created 0 topic(s)" in capsys.readouterr().out


def test_migrations_work_for_an_admin_that_is_no_superuser(stack_home):
    """As on RDS, where the master is no superuser (rds_superuser: CREATEROLE, CREATEDB, owner of its
    database): a server of its own (roles are per cluster), a master like RDS's, and ``migrate`` as
    it creates the roles, acts as the owner, and leaves the grants exact."""
    import uuid

    from fraud_devstack.postgres_server import PostgresServer

    word = uuid.uuid4().hex  # the master's password, generated
    server = PostgresServer(stack_home / "rds-like")
    state = server.start(None)
    try:
        with psycopg.connect(server.dsn(state, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE master LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD {}").format(
                sql.Literal(word)))
        with open(server.passfile, "a") as passfile:  # libpq finds it there, as the admin's does
            passfile.write(f"127.0.0.1:*:*:master:{word}\n")
        master = psycopg.conninfo.make_conninfo(server.dsn(state, "postgres"), user="master")
        with psycopg.connect(master, autocommit=True) as conn:
            conn.execute("CREATE DATABASE app")
        app = psycopg.conninfo.make_conninfo(master, dbname="app")
        assert migrate(app) == [f.name.removesuffix(".sql") for f in migration_files()]
        assert_grants_exact(app)
    finally:
        server.stop(state)
