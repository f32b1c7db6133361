"""Lake maintenance: compaction and clean-up of the Delta tables the stream appends to.

The stream commits bronze, silver and gold once per micro-batch (every 1-3 s), each commit adding
a file per partition it touches: tens of thousands of small files per table and day, which every
reader (training, notebooks, ad-hoc queries) then lists and opens. ``maintain_lake`` runs, per table:

- **compaction** (Delta's OPTIMIZE, bin-packing): the small files of each partition rewritten into
  few large ones, in a commit that changes no data (``dataChange=false``);
- **VACUUM**: data files that no table version of the last ``retention_hours`` needs are deleted
  (the compacted-away small files, once that long has passed), so time travel to any version in
  that window keeps working. LITE (the files the log says were removed), not FULL (every file under
  the table listed and matched against the snapshot): 1.6-3.4 s against 20-50 s per demo-lake table;
  FULL only when Delta asks for it (the log no longer holds some removals);
- the **log** needs no step here: Delta deletes commit files older than the table's
  ``delta.logRetentionDuration`` (30 days by default) when it writes a log checkpoint.

And in PostgreSQL:

- ``archive_closed_alerts`` moves alerts closed by a verdict (confirmed fraud, false positive) more
  than ``maintenance.archive_closed_alerts_after_days`` ago, with their related transactions and
  actions, to the lake table ``alerts_archive`` (one row per alert; the verdicts stay training
  labels there), then deletes them from PostgreSQL: a MERGE on ``alert_id`` first, so a run that
  dies between the two steps repeats the MERGE without a duplicate;
- ``expire_rows`` deletes the rows of the tables that only grow and that nothing reads back after a
  while (``maintenance.postgres_retention_days``: per-batch metrics and quality results), in chunks
  so that no statement holds its locks long.

``sizes`` measures what grows (files and log per lake table, the stream's checkpoint and state,
PostgreSQL's tables); ``record_run`` stores it with the run's report for the Dash pipeline page.

Both steps can run while the stream appends: the stream's commits are blind appends, which
conflict with neither a compaction nor a vacuum (Delta's conflict rules), and a reader keeps the
snapshot it started with, whose files VACUUM keeps for ``retention_hours``. The stream's
exactly-once markers are unaffected: a compaction commit carries none, and ``fraud.lake`` reads
past such commits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from pyspark.sql import SparkSession

from fraud.config import Config, PostgresRetention
from fraud.lake import file_system_of

log = logging.getLogger(__name__)

ARCHIVE_TABLE = "alerts_archive"
TABLES = ("bronze", "silver", "gold", "quarantine", ARCHIVE_TABLE)
# What the Dash pipeline page and the soak test follow the size of.
POSTGRES_TABLES = ("alerts", "alert_transactions", "alert_actions", "batch_metrics", "quality_results",
                   "sink_progress", "drift_results", "shadow_outcomes", "shadow_alerts", "rule_hits")

# PostgreSQL tables whose old rows expire (``PostgresRetention``'s fields) -> the column that dates
# a row (indexed).
EXPIRING_ROWS = {"batch_metrics": "finished_at", "quality_results": "validated_at", "drift_results": "computed_at",
                 "shadow_outcomes": "scored_at", "shadow_alerts": "scored_at", "rule_hits": "scored_at"}
_CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class TableMaintenance:
    table: str
    version_before: int
    version_after: int
    live_files_before: int  # files the table's current version reads
    live_files_after: int
    files_on_disk_before: int  # every data file under the table's folder, live or not
    files_on_disk_after: int
    compaction_s: float
    vacuum_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def _files(path: str) -> list:
    """Every file under ``path`` (none if it does not exist)."""
    from pyarrow import fs

    file_system, root = file_system_of(path)
    selector = fs.FileSelector(root, recursive=True, allow_not_found=True)
    return [i for i in file_system.get_file_info(selector) if i.type == fs.FileType.File]


def data_files_on_disk(path: str) -> int:
    """Parquet data files under a table's folder, whether its current version reads them or not."""
    return sum(1 for i in _files(path) if i.base_name.endswith(".parquet") and "/_delta_log/" not in i.path)


def bytes_under(path: str) -> int:
    return sum(i.size for i in _files(path))


def maintain_table(spark: SparkSession, path: str, table: str, retention_hours: float) -> TableMaintenance | None:
    """Compact the table at ``path`` and vacuum what versions older than ``retention_hours`` need;
    None if there is no table there yet."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    delta = DeltaTable.forPath(spark, path)

    def state() -> tuple[int, int]:
        detail = delta.detail().select("numFiles").first()
        version = delta.history(1).select("version").first()
        return version[0], detail[0]

    version_before, live_before = state()
    on_disk_before = data_files_on_disk(path)
    t0 = time.perf_counter()
    delta.optimize().executeCompaction()
    t1 = time.perf_counter()
    vacuum(spark, path, retention_hours)
    t2 = time.perf_counter()
    version_after, live_after = state()
    report = TableMaintenance(table, version_before, version_after, live_before, live_after, on_disk_before,
                              data_files_on_disk(path), round(t1 - t0, 1), round(t2 - t1, 1))
    log.info("maintained %s: %s", table, report.as_dict())
    return report


def vacuum(spark: SparkSession, path: str, retention_hours: float) -> str:
    """VACUUM LITE, or FULL where LITE cannot see every removed file; the kind that ran."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    table = "delta.`" + path.replace("`", "``") + "`"
    try:
        spark.sql(f"VACUUM {table} LITE RETAIN {float(retention_hours)} HOURS").collect()
        return "LITE"
    except (PySparkException, Py4JJavaError) as err:  # Delta's refusal reaches Python unconverted
        if "DELTA_CANNOT_VACUUM_LITE" not in str(err):
            raise
        log.warning("VACUUM LITE refused on %s (DELTA_CANNOT_VACUUM_LITE: the log no longer holds every "
                    "removal): running FULL", path)
    spark.sql(f"VACUUM {table} FULL RETAIN {float(retention_hours)} HOURS").collect()
    return "FULL"


def maintain_lake(spark: SparkSession, config: Config, retention_hours: float) -> list[TableMaintenance]:
    """Every table of the lake that exists, one after another (each step is already parallel)."""
    reports = [maintain_table(spark, config.table_path(table), table, retention_hours) for table in TABLES]
    return [r for r in reports if r is not None]


def expire_rows(conn, retention: PostgresRetention) -> dict[str, int]:
    """Delete rows older than their table's retention, ``_CHUNK_ROWS`` per transaction (autocommit
    ``conn``); rows deleted per table."""
    from psycopg import sql

    deleted = {}
    for table, days in asdict(retention).items():
        column = sql.Identifier(EXPIRING_ROWS[table])
        statement = sql.SQL(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "
            "WHERE {column} < now() - make_interval(days => %s) LIMIT %s))"
        ).format(table=sql.Identifier(table), column=column)
        deleted[table] = 0
        while True:
            with conn.transaction():
                count = conn.execute(statement, (days, _CHUNK_ROWS)).rowcount
            deleted[table] += count
            if count < _CHUNK_ROWS:
                break
        log.info("expired %d rows of %s (older than %d days)", deleted[table], table, days)
    return deleted


# An archived alert: its PostgreSQL columns, its related transactions and its actions (each
# nested in the order the alert page shows them). tests/test_maintenance.py checks that every
# PostgreSQL column has a field here, so a column added later is not dropped on archiving.
ARCHIVE_SCHEMA = (
    "alert_id string, domain string, actor_id string, alert_type string, episode_start timestamp,"
    " first_seen timestamp, last_seen timestamp, txn_count int, total_amount decimal(22,4), max_score double,"
    " severity string, class_probabilities map<string,double>, model_version string, test_id string,"
    " created_at timestamp, updated_at timestamp, status string, analyst_note string, status_by string,"
    " status_at timestamp, top_features array<struct<feature string, value string, contribution double>>,"
    " raised_by array<string>, rule_reasons array<struct<rule string, reason string, source string>>,"
    " expected_loss_usd double,"
    " transactions array<struct<transaction_id string, event_time timestamp, amount decimal(22,4),"
    " currency string, fraud_score double, predicted_class string, class_probabilities map<string,double>,"
    " quality_flags array<string>, produced_at timestamp, query_id string, batch_id bigint,"
    " top_features array<struct<feature string, value string, contribution double>>,"
    " raised_by array<string>, rule_reasons array<struct<rule string, reason string, source string>>,"
    " expected_loss_usd double>>,"
    " actions array<struct<id bigint, action string, note string, actor string, at timestamp>>"
)

_CLOSED_ALERTS_SQL = """
SELECT a.alert_id, a.status_at, (to_jsonb(a) || jsonb_build_object(
    'transactions', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'alert_id' ORDER BY t.event_time)
                              FROM alert_transactions t WHERE t.alert_id = a.alert_id), '[]'::jsonb),
    'actions', coalesce((SELECT jsonb_agg(to_jsonb(x) - 'alert_id' ORDER BY x.at)
                         FROM alert_actions x WHERE x.alert_id = a.alert_id), '[]'::jsonb)))::text
FROM alerts a
WHERE a.status IN ('confirmed_fraud', 'false_positive') AND a.status_at < now() - make_interval(days => %s)
ORDER BY a.status_at
LIMIT %s
"""
_ARCHIVE_CHUNK_ALERTS = 2_000


def archive_closed_alerts(spark: SparkSession, conn, config: Config, after_days: int) -> int:
    """Move alerts whose verdict is older than ``after_days`` to the lake (``ARCHIVE_TABLE``), then
    delete them (their transactions and actions cascade) from PostgreSQL; alerts archived.

    Per chunk: the MERGE commits first, the DELETE after it. A run that stops between the two
    leaves the alerts in both places, and the next run's MERGE updates the archived rows instead
    of adding them again. The DELETE takes only alerts whose verdict time is the archived one, so a
    verdict changed meanwhile stays in PostgreSQL (and its newer state is archived later)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    path = config.table_path(ARCHIVE_TABLE)
    archived = 0
    while True:
        rows = conn.execute(_CLOSED_ALERTS_SQL, (after_days, _ARCHIVE_CHUNK_ALERTS)).fetchall()
        if not rows:
            break
        docs = spark.createDataFrame([(doc,) for _, _, doc in rows], "doc string")
        alerts = docs.select(F.from_json("doc", ARCHIVE_SCHEMA, {"mode": "FAILFAST"}).alias("a")).select("a.*")
        if not DeltaTable.isDeltaTable(spark, path):
            alerts.limit(0).write.format("delta").save(path)
        # Schema evolution: an archive written before alerts gained columns (migration 0011) gains them.
        (DeltaTable.forPath(spark, path).alias("archive")
         .merge(alerts.alias("closed"), "archive.alert_id = closed.alert_id").withSchemaEvolution()
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
        with conn.transaction():
            deleted = conn.execute(
                "DELETE FROM alerts WHERE (alert_id, status_at) IN (SELECT * FROM unnest(%s::text[], %s::timestamptz[]))",
                ([r[0] for r in rows], [r[1] for r in rows])).rowcount
        archived += deleted
        log.info("archived %d closed alerts to %s", deleted, path)
        if len(rows) < _ARCHIVE_CHUNK_ALERTS:
            break
    return archived


def sizes(conn, config: Config) -> dict:
    """What grows: per lake table its live data files are in the report; here the bytes of its
    log, the stream's checkpoint and its state, and each PostgreSQL table with its indexes."""
    from fraud.stream import checkpoint_location

    checkpoint = checkpoint_location(config)
    postgres = dict(conn.execute(
        "SELECT relname::text, pg_total_relation_size(c.oid) FROM pg_class c"
        " WHERE relname = ANY(%s) AND relkind = 'r' AND relnamespace = 'public'::regnamespace",
        (list(POSTGRES_TABLES),)).fetchall())
    return {"log_bytes": {t: bytes_under(f"{config.table_path(t)}/_delta_log") for t in TABLES},
            "checkpoint_bytes": bytes_under(checkpoint), "state_bytes": bytes_under(f"{checkpoint}/state"),
            "postgres_bytes": postgres}


def record_run(conn, *, run_id: str, started_at: datetime, lake: list[TableMaintenance], measured: dict,
               rows_expired: dict[str, int], alerts_archived: int) -> None:
    from psycopg.types.json import Jsonb

    tables = {r.table: r.as_dict() | {"log_bytes": measured["log_bytes"].get(r.table)} for r in lake}
    conn.execute(
        "INSERT INTO maintenance_runs (run_id, started_at, finished_at, lake, checkpoint_bytes, state_bytes,"
        " postgres_bytes, rows_expired, alerts_archived) VALUES (%s, %s, clock_timestamp(), %s, %s, %s, %s, %s, %s)",
        (run_id, started_at, Jsonb(tables), measured["checkpoint_bytes"], measured["state_bytes"],
         Jsonb(measured["postgres_bytes"]), Jsonb(rows_expired), alerts_archived))
