"""What the job checks before it starts: one instance per checkpoint, and a checkpoint that matches the tables.

Exactly-once rests on the checkpoint (which offsets each batch id covers) and the markers the
stream leaves in the Delta commits and in ``sink_progress`` (which batch ids are applied). Two
ways to break it without any crash:

- **two instances on one checkpoint** plan the same batch ids over different offsets, and the
  lake skips one instance's batches as "already written" (``fraud.lake`` reads a table's history
  once per process). A PostgreSQL session-level advisory lock keyed on the checkpoint location
  makes the second instance refuse to start. The lock lives as long as the job's connection: a
  killed job's lock goes with its socket.
- **a checkpoint deleted, replaced or restored from an old backup**: a new query id would
  reprocess everything as new batches (duplicates in every table); an old one would re-plan
  batch ids the tables already hold over other offsets (records skipped). Both are refused with
  the recovery (docs/operations.md, "Checkpoint recovery").
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool

from fraud.cli import UserError
from fraud.config import Config
from fraud.db import NO_RETRY, RetryPolicy

log = logging.getLogger(__name__)

RECOVERY = "see docs/operations.md, 'Checkpoint recovery'"


class CheckpointFiles:
    """The parts of a streaming checkpoint the guard reads (local path or any pyarrow file system URI)."""

    def __init__(self, location: str):
        from fraud.lake import file_system_of

        self.location = location
        self.fs, self.root = file_system_of(location)

    def query_id(self) -> str | None:
        """The streaming query id in ``metadata``; None before the query first started."""
        try:
            with self.fs.open_input_stream(f"{self.root}/metadata") as stream:
                return json.loads(stream.read())["id"]
        except FileNotFoundError:
            return None

    def last_batch(self, log_dir: str) -> int | None:
        """The highest batch id in ``offsets`` (planned) or ``commits`` (finished); None if empty."""
        from pyarrow import fs

        try:
            infos = self.fs.get_file_info(fs.FileSelector(f"{self.root}/{log_dir}"))
        except FileNotFoundError:
            return None
        ids = [int(i.base_name) for i in infos if i.base_name.isdigit()]
        return max(ids) if ids else None

    def end_offsets(self, batch_id: int) -> dict[str, dict[str, int]]:
        """Where batch ``batch_id`` ends in Kafka: {topic: {partition: offset}} from ``offsets/<id>``."""
        # v1, then the batch metadata, then one JSON line per source.
        return self._offsets(f"offsets/{batch_id}", skip=2)

    def start_offsets(self) -> dict[str, dict[str, int]]:
        """Where the query's first run started in Kafka (``startingOffsets`` resolved), from ``sources/0/0``."""
        return self._offsets("sources/0/0", skip=1)  # v1, then the offsets

    def _offsets(self, name: str, skip: int) -> dict[str, dict[str, int]]:
        with self.fs.open_input_stream(f"{self.root}/{name}") as stream:
            lines = stream.read().decode().splitlines()
        offsets: dict[str, dict[str, int]] = {}
        for line in lines[skip:]:
            for topic, partitions in json.loads(line).items():
                offsets.setdefault(topic, {}).update(partitions)
        return offsets


def lock_key(checkpoint: str) -> int:
    """A signed 64-bit advisory-lock key for a checkpoint location."""
    return int.from_bytes(hashlib.sha256(f"fraud-checkpoint:{checkpoint}".encode()).digest()[:8], "big", signed=True)


class CheckpointLock:
    """Held for the job's lifetime on its own autocommit connection."""

    def __init__(self, pool: ConnectionPool, checkpoint: str, retry: RetryPolicy = NO_RETRY):
        self.pool = pool
        self.dsn = pool.conninfo
        self.checkpoint = checkpoint
        self.retry = retry
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> "CheckpointLock":
        try:
            self._acquire()
        except psycopg.OperationalError as err:
            raise UserError(f"cannot connect to PostgreSQL for the checkpoint lock: {str(err).strip()[-200:]}") from None
        return self

    def _acquire(self) -> None:
        conn = psycopg.connect(self.dsn, autocommit=True, application_name="fraud-stream-lock", connect_timeout=10)
        # A driver lost with its node never closes the socket: server-side keepalives end the
        # session, and free the lock for the restarted job, within ~25 s instead of the OS's hours.
        for setting in ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5",
                        "SET tcp_keepalives_count = 3"):
            conn.execute(setting)
        (locked,), = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.checkpoint),)).fetchall()
        if not locked:
            conn.close()
            raise UserError(f"another instance of the streaming job is running on checkpoint {self.checkpoint}"
                            " (it holds the checkpoint's lock in PostgreSQL); stop it before starting this one")
        self._conn = conn

    def ensure(self) -> None:
        """Still held (one round trip); taken again if its session died with a database restart,
        refused if another instance took it meanwhile."""
        try:
            self._conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            self._conn.close()
        log.warning("the checkpoint lock's PostgreSQL session was lost; taking the lock again")
        # A refused connection fails at once: wait for the server the way the batch's other database
        # work does (the pool's reconnects within each retry), so the lock rides out the same outages.
        self.retry.run(self.pool, lambda conn: None, "checkpoint lock: server")
        self.retry.call(self._acquire, "checkpoint lock")

    def __exit__(self, *exc) -> None:
        if self._conn is not None:
            self._conn.close()  # closing the session releases the lock
            self._conn = None


@dataclass(frozen=True)
class LakePosition:
    """The newest stream commit of a table: which query and batch wrote it."""

    table: str
    query_id: str
    batch_id: int


def lake_positions(config: Config, tables=("bronze", "silver")) -> list[LakePosition]:
    """The newest commit each table holds from the stream (tables the stream has not written are left out)."""
    from fraud.lake import stream_commits

    positions = []
    for table in tables:
        markers = stream_commits(config.table_path(table), limit=20)
        if markers:
            positions.append(LakePosition(table, markers[0]["query_id"], markers[0]["batch_id"]))
    return positions


def check_checkpoint(config: Config, checkpoint: str) -> None:
    """Refuse to start when the checkpoint does not match what the tables hold (see the module doc)."""
    files = CheckpointFiles(checkpoint)
    query_id = files.query_id()
    planned = files.last_batch("offsets")
    for position in lake_positions(config):
        if position.query_id != query_id:
            state = "is missing" if query_id is None else f"belongs to another query ({query_id})"
            raise UserError(
                f"checkpoint {checkpoint} {state}, but table {position.table} holds batches of query "
                f"{position.query_id} up to batch {position.batch_id}: starting would reprocess records as new "
                f"batches; {RECOVERY}")
        # A batch is written before the checkpoint commits it, so the tables may hold the last
        # planned batch, never one beyond it.
        if planned is None or position.batch_id > planned:
            raise UserError(
                f"checkpoint {checkpoint} is behind the tables: it has planned up to batch {planned}, table "
                f"{position.table} holds batch {position.batch_id} (restored from an older copy?); {RECOVERY}")
