-- The streaming job's sinks: alerts with their related transactions, exactly-once
-- bookkeeping, per-batch metrics, the model registry mirror and analyst actions.

CREATE TABLE alerts (
    alert_id            text PRIMARY KEY,   -- deterministic: domain, actor, type, episode start
    domain              text NOT NULL,
    actor_id            text NOT NULL,
    alert_type          text NOT NULL,      -- the model's predicted fraud class
    episode_start       timestamptz NOT NULL,
    first_seen          timestamptz NOT NULL,
    last_seen           timestamptz NOT NULL,
    txn_count           integer NOT NULL,
    total_amount        numeric(18, 2) NOT NULL,
    max_score           double precision NOT NULL,
    severity            text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    class_probabilities jsonb NOT NULL,
    model_version       text NOT NULL,
    test_id             text,               -- load-test run, for evaluation only
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Analyst-owned columns: the stream never writes them.
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'acknowledged', 'confirmed_fraud', 'false_positive')),
    analyst_note        text,
    status_by           text,
    status_at           timestamptz
);
CREATE INDEX alerts_episode_lookup ON alerts (domain, actor_id, alert_type, last_seen DESC);
CREATE INDEX alerts_recent ON alerts (last_seen DESC);
CREATE INDEX alerts_test ON alerts (test_id);

CREATE TABLE alert_transactions (
    alert_id            text NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    transaction_id      text NOT NULL,
    event_time          timestamptz NOT NULL,
    amount              numeric(18, 2) NOT NULL,
    fraud_score         double precision NOT NULL,
    predicted_class     text NOT NULL,
    class_probabilities jsonb NOT NULL,
    produced_at         timestamptz NOT NULL,   -- Kafka record timestamp (the producer's clock)
    query_id            text NOT NULL,
    batch_id            bigint NOT NULL,
    PRIMARY KEY (alert_id, transaction_id)
);
CREATE INDEX alert_transactions_txn ON alert_transactions (transaction_id);
CREATE INDEX alert_transactions_batch ON alert_transactions (query_id, batch_id);

-- One row per micro-batch whose PostgreSQL effects are committed (same transaction).
CREATE TABLE sink_progress (
    query_id            text NOT NULL,
    batch_id            bigint NOT NULL,
    committed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    alerts_touched      integer NOT NULL,
    transactions_added  integer NOT NULL,
    PRIMARY KEY (query_id, batch_id)
);

CREATE TABLE batch_metrics (
    query_id            text NOT NULL,
    batch_id            bigint NOT NULL,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    input_rows          bigint NOT NULL,
    input_rows_by_topic jsonb NOT NULL,
    bronze_rows         bigint NOT NULL,
    silver_rows         bigint NOT NULL,
    quarantine_rows     bigint NOT NULL,
    quarantine_by_reason jsonb NOT NULL,
    gold_rows           bigint NOT NULL,
    alert_rows          bigint NOT NULL,
    step_ms             jsonb NOT NULL,
    model_version       text,
    latency_p50_ms      double precision,
    latency_p95_ms      double precision,
    latency_p99_ms      double precision,
    latency_max_ms      double precision,
    kafka_lag           bigint,
    PRIMARY KEY (query_id, batch_id)
);
CREATE INDEX batch_metrics_recent ON batch_metrics (finished_at DESC);

CREATE TABLE model_versions (
    version             text PRIMARY KEY,
    created_at          timestamptz NOT NULL,
    metrics             jsonb NOT NULL,
    features            jsonb NOT NULL,
    training_data       jsonb NOT NULL,
    code_revision       text,
    is_current          boolean NOT NULL DEFAULT false,
    promoted_at         timestamptz
);

CREATE TABLE alert_actions (
    id                  bigserial PRIMARY KEY,
    alert_id            text NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    action              text NOT NULL CHECK (action IN ('acknowledge', 'confirm_fraud', 'false_positive', 'note')),
    note                text,
    actor               text NOT NULL,
    at                  timestamptz NOT NULL DEFAULT clock_timestamp()
);
