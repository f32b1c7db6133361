-- Data quality results (fraud.quality): one row per validation of one suite on one batch.
-- engine 'spark': the suite's row-level expectations as Spark expressions, every stream batch
-- (failing rows were quarantined as "expectation:<name>"); engine 'great_expectations': a GX
-- checkpoint run (every quality.gx_every_n_batches batches, or the training gate).
CREATE TABLE IF NOT EXISTS quality_results (
    run_id              text        NOT NULL,  -- the streaming query id, or a training run name
    batch_id            bigint      NOT NULL,
    suite               text        NOT NULL,
    engine              text        NOT NULL CHECK (engine IN ('spark', 'great_expectations')),
    validated_at        timestamptz NOT NULL,
    success             boolean     NOT NULL,
    rows_checked        bigint,
    rows_failed         bigint,                -- rows failing at least one row-level expectation
    expectations        integer     NOT NULL,  -- expectations evaluated
    failed_expectations integer     NOT NULL,
    -- [{expectation, type, column, unexpected, examples: [{transaction_id?, value}], observed?}]
    failures            jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (run_id, batch_id, suite, engine)
);

CREATE INDEX IF NOT EXISTS quality_results_validated_at ON quality_results (validated_at);
