"""Who may do what in PostgreSQL: one owner, one login role per component, each with only its grants.

- ``fraud_owner`` (no login) owns every table. Migrations run as it: the admin (the local stack's
  superuser, the RDS master in AWS) connects and ``SET ROLE``s to it. Nobody else can create,
  drop or alter a table.
- Each component connects as its own login role, ``fraud_<component>``, with the table privileges in
  ``GRANTS`` and nothing else: the streaming job (``stream``), the Dash app (``dash``), the
  simulator (``simulator``), and the batch jobs and CLIs that train, maintain and evaluate
  (``batch``). Locally each has a password in the stack's pgpass file; in AWS each authenticates
  with an IAM token (``rds_iam``) its own IAM role may ask for, so none holds a password.

``fraud.db.migrate`` calls ``ensure_roles`` and ``prepare_database`` as the admin (what is missing
is created, an old database's tables handed to the owner), then ``apply_grants`` as the owner:
every grant exactly ``GRANTS``, the rest revoked, so the grants are the same on a fresh database,
an old one, and after every migration.
"""

from __future__ import annotations

from psycopg import Connection, sql

OWNER = "fraud_owner"
COMPONENTS = ("stream", "dash", "simulator", "batch")
S, I, U, D = "SELECT", "INSERT", "UPDATE", "DELETE"


def update(*columns: str) -> str:
    """UPDATE of these columns only."""
    return f"UPDATE ({', '.join(columns)})"


def insert(*columns: str) -> str:
    """INSERT of these columns only (the others take their defaults)."""
    return f"INSERT ({', '.join(columns)})"


# An alert's columns the stream recomputes, and the analysts' (migration 0002): neither writes the other's.
ALERT_FIGURES = ("txn_count", "total_amount", "first_seen", "last_seen", "max_score", "class_probabilities",
                 "top_features", "severity", "updated_at", "model_version", "raised_by", "rule_reasons",
                 "expected_loss_usd")
ALERT_VERDICT = ("status", "analyst_note", "status_by", "status_at")
# What moving the model pointer changes on a version's row (fraud.model.versions): all the Dash app may.
MODEL_POINTER = ("is_current", "promoted_at", "promoted_by")
# What a record of a moved pointer states; its id and time are the database's (nobody backdates one).
POINTER_CHANGE = ("action", "version", "actor")

# Table -> privileges, per component. A table a component does not list, it cannot touch.
GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    # Kafka -> alerts, bookkeeping, per-batch figures, quality results and the shadow challenger.
    "stream": {
        "alerts": (S, I, update(*ALERT_FIGURES)),
        "alert_transactions": (S, I),
        "sink_progress": (S, I),
        "batch_metrics": (S, I, U),
        "quality_results": (S, I, U),
        "shadow_outcomes": (I,),
        "shadow_alerts": (I,),
        "rule_hits": (I,),
        "schema_migrations": (S,),
    },
    # Reads what the pages show; writes analysts' verdicts and the model pointer's mirror (with who moved it).
    "dash": {
        "alerts": (S, update(*ALERT_VERDICT)),
        "alert_transactions": (S,),
        "alert_actions": (S, I),
        "batch_metrics": (S,),
        "quality_results": (S,),
        "maintenance_runs": (S,),
        "drift_results": (S,),
        "model_versions": (S, update(*MODEL_POINTER)),
        "model_pointer_changes": (S, insert(*POINTER_CHANGE)),
        "shadow_outcomes": (S,),
        "shadow_alerts": (S,),
        "rule_hits": (S,),
        "simulation_runs": (S,),
        "ground_truth_sequences": (S,),
        "sink_progress": (S,),
        "schema_migrations": (S,),
    },
    # The ground truth of the traffic it produces.
    "simulator": {
        "simulation_runs": (S, I, U),
        "ground_truth_sequences": (I,),
        "schema_migrations": (S,),
    },
    # Training and retraining (labels), drift, maintenance (expiry, archive), evaluation, the model CLI.
    "batch": {
        "alerts": (S, D),
        "alert_transactions": (S,),
        "alert_actions": (S,),
        "batch_metrics": (S, D),
        "quality_results": (S, D),
        "drift_results": (S, I, D),
        "shadow_outcomes": (S, D),
        "shadow_alerts": (S, D),
        "rule_hits": (S, D),
        "maintenance_runs": (S, I),
        "model_versions": (S, I, U),
        "model_pointer_changes": (S, insert(*POINTER_CHANGE)),
        "simulation_runs": (S,),
        "ground_truth_sequences": (S,),
        "sink_progress": (S,),
        "schema_migrations": (S,),
    },
}

# Sequences behind the ``bigserial`` columns a component inserts into.
SEQUENCES = {"alert_actions_id_seq": ("dash",), "model_pointer_changes_id_seq": ("dash", "batch")}


def login(component: str) -> str:
    """The login role of a component."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown database component {component!r}")
    return f"fraud_{component}"


def ensure_roles(conn: Connection, *, iam: bool) -> None:
    """Create the owner and the login roles where missing (as the admin); with ``iam``, the login
    roles authenticate with RDS IAM tokens. Passwords, where there are any, are the caller's."""
    existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                           ([OWNER, *map(login, COMPONENTS)],))}
    if OWNER not in existing:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(OWNER)))
    for component in COMPONENTS:
        if login(component) not in existing:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login(component))))
        if iam:
            conn.execute(sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(login(component))))
    # The admin acts as the owner for migrations (an RDS master is no superuser: it needs membership).
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(OWNER)))


def prepare_database(conn: Connection, database: str) -> None:
    """As the admin: only the login roles may connect; the owner may create tables in the schema and
    owns the tables and sequences there (a database migrated before the roles existed had them owned
    by the admin)."""
    logins = sql.SQL(", ").join(sql.Identifier(login(c)) for c in COMPONENTS)
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), logins))
    conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(OWNER)))
    owned_by_others = conn.execute(
        "SELECT c.relkind, c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'S') AND r.rolname <> %s"
        # A sequence owned by a column follows its table.
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'a')",
        (OWNER,)).fetchall()
    for kind, name in owned_by_others:
        what = "TABLE" if kind == "r" else "SEQUENCE"
        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
            sql.SQL(what), sql.Identifier(name), sql.Identifier(OWNER)))


def apply_grants(conn: Connection) -> None:
    """As the owner: every component's privileges exactly as in ``GRANTS``, the rest revoked."""
    tables = [r[0] for r in conn.execute(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")]
    logins = sql.SQL(", ").join(sql.Identifier(login(c)) for c in COMPONENTS)
    for table in tables:
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}").format(sql.Identifier(table), logins))
    for component, grants in GRANTS.items():
        for table, privileges in grants.items():
            conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(map(sql.SQL, privileges)), sql.Identifier(table),
                sql.Identifier(login(component))))
    for sequence, components in SEQUENCES.items():
        conn.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM PUBLIC, {}").format(sql.Identifier(sequence), logins))
        for component in components:
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                sql.Identifier(sequence), sql.Identifier(login(component))))
