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

And in PostgreSQL, ``expire_rows`` deletes the rows of the tables that only grow and that nothing
reads back after a while (``maintenance.postgres_retention_days``: per-batch metrics and quality
results), in chunks so that no statement holds its locks long.

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

from pyspark.sql import SparkSession

from fraud.config import Config, PostgresRetention
from fraud.lake import file_system_of

log = logging.getLogger(__name__)

TABLES = ("bronze", "silver", "gold", "quarantine")

# PostgreSQL tables whose old rows expire (``PostgresRetention``'s fields) -> the column that dates
# a row (indexed).
EXPIRING_ROWS = {"batch_metrics": "finished_at", "quality_results": "validated_at"}
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


def data_files_on_disk(path: str) -> int:
    """Parquet data files under a table's folder, whether its current version reads them or not."""
    from pyarrow import fs

    file_system, root = file_system_of(path)
    infos = file_system.get_file_info(fs.FileSelector(root, recursive=True))
    return sum(1 for i in infos if i.type == fs.FileType.File and i.base_name.endswith(".parquet")
               and "/_delta_log/" not in i.path)


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
    from pyspark.errors import PySparkException

    table = "delta.`" + path.replace("`", "``") + "`"
    try:
        spark.sql(f"VACUUM {table} LITE RETAIN {float(retention_hours)} HOURS").collect()
        return "LITE"
    except PySparkException as err:
        if "VACUUM FULL" not in str(err):
            raise
        log.warning("VACUUM LITE refused on %s (%s): running FULL", path, str(err).splitlines()[0])
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
