-- Running for months (#22): the state store's size per batch, the upkeep job's reports, and the
-- indexes that keep the Dash app's queries off sequential scans as the tables grow (the plans are
-- checked on seeded large tables in tests/test_maintenance.py).

-- From each batch's progress report (all stateful operators summed): rows held, and the memory
-- RocksDB reports for them (block cache, memtables, index and filter blocks).
ALTER TABLE batch_metrics ADD COLUMN state_rows bigint, ADD COLUMN state_memory_bytes bigint;

-- One row per run of jobs/maintain_lake.py: what it did and how large everything was after it.
CREATE TABLE maintenance_runs (
    run_id              text PRIMARY KEY,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    lake                jsonb NOT NULL,   -- per table: versions, live files and files on disk, log bytes, seconds
    checkpoint_bytes    bigint,           -- the stream's checkpoint folder (offsets, commits, state)
    state_bytes         bigint,           -- its state/ subfolder (RocksDB snapshots and changelogs)
    postgres_bytes      jsonb NOT NULL,   -- per table, with its indexes and TOAST
    rows_expired        jsonb NOT NULL,
    alerts_archived     integer NOT NULL
);
CREATE INDEX maintenance_runs_recent ON maintenance_runs (finished_at DESC);

-- Live page: alerts created in the window; open alerts by severity.
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerts_open ON alerts (severity) WHERE status = 'open';
-- Alert page, and the cascade when an archived alert is deleted.
CREATE INDEX alert_actions_alert ON alert_actions (alert_id, at);
-- The archive step: closed alerts by the time of their verdict.
CREATE INDEX alerts_closed ON alerts (status_at) WHERE status IN ('confirmed_fraud', 'false_positive');
