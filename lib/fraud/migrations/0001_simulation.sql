-- Load-test runs and their ground truth (written by the simulator, read by evaluation
-- and the Dash load-test page).
CREATE TABLE simulation_runs (
    test_id          text PRIMARY KEY,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    status           text NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'completed', 'failed')),
    domains          text[] NOT NULL,
    load_level       text,
    target_rate_per_s double precision,
    seed             bigint NOT NULL,
    fraud_rate       double precision,
    events_sent      bigint NOT NULL DEFAULT 0,
    errors           bigint NOT NULL DEFAULT 0,
    achieved_rate_per_s double precision,
    fraud_share      double precision,
    message          text
);

-- One row per simulated actor sequence: what was really fraud, and which events carry it.
CREATE TABLE ground_truth_sequences (
    test_id          text NOT NULL REFERENCES simulation_runs (test_id) ON DELETE CASCADE,
    actor_id         text NOT NULL,
    domain           text NOT NULL,
    pattern          text NOT NULL,
    is_fraud         boolean NOT NULL,
    transaction_ids  text[] NOT NULL,
    first_event_time timestamptz NOT NULL,
    last_event_time  timestamptz NOT NULL,
    PRIMARY KEY (test_id, actor_id)
);
CREATE INDEX ground_truth_sequences_fraud ON ground_truth_sequences (test_id, domain) WHERE is_fraud;
