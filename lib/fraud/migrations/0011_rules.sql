-- Typology rules beside the model and a severity that ranks (#40). What raised an alert: 'model',
-- 'rule:<name>' or both, and each rule's reason in words (fraud.rules); the expected loss in
-- dollars that its severity ranks by (fraud.severity). Alerts before this migration were the model's.
ALTER TABLE alert_transactions ADD COLUMN raised_by text[] NOT NULL DEFAULT '{model}';
ALTER TABLE alert_transactions ADD COLUMN rule_reasons jsonb NOT NULL DEFAULT '[]';
ALTER TABLE alert_transactions ADD COLUMN expected_loss_usd double precision NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN raised_by text[] NOT NULL DEFAULT '{model}';
ALTER TABLE alerts ADD COLUMN rule_reasons jsonb NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN expected_loss_usd double precision NOT NULL DEFAULT 0;

-- Every row a rule matched, shadowed rules included, with the row's ground truth where the event
-- recorded one and whether it alerted: a rule's precision against verdicts and ground truth
-- (fraud.shadow.rule_precision). Written after the batch's alerts; expired by maintenance.
CREATE TABLE rule_hits (
    rule                text NOT NULL,
    transaction_id      text NOT NULL,
    shadow              boolean NOT NULL,
    alerted             boolean NOT NULL,
    true_class          text NOT NULL,
    scored_at           timestamptz NOT NULL,
    PRIMARY KEY (rule, transaction_id)
);
CREATE INDEX rule_hits_scored ON rule_hits (scored_at);

-- Alerts from before this migration: an approximate expected loss (the fraud score, uncalibrated,
-- times the amount in its own currency), so "money at risk" does not rank them last. Their
-- severity stays the one their scores gave.
UPDATE alert_transactions SET expected_loss_usd = fraud_score * amount::float8;
UPDATE alerts a SET expected_loss_usd = s.loss
FROM (SELECT alert_id, sum(expected_loss_usd) AS loss FROM alert_transactions GROUP BY alert_id) s
WHERE a.alert_id = s.alert_id;
