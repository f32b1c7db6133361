-- Drift (#21): per run of fraud.drift, the population stability index of each model input and of
-- the fraud score over a live window, against the current model's training reference.
CREATE TABLE drift_results (
    computed_at     timestamptz NOT NULL,
    model_version   text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    rows            bigint NOT NULL,
    feature         text NOT NULL,
    psi             double precision,   -- null: no rows in the window
    flagged         boolean NOT NULL,   -- psi above fraud.drift.FLAG (0.2)
    PRIMARY KEY (computed_at, feature)
);
CREATE INDEX drift_results_recent ON drift_results (computed_at DESC);
