-- Why an alert fired (#21): per alerted transaction, the model inputs that raised its predicted
-- class's probability the most ([{"feature", "value", "contribution"}], largest first; fraud.trees);
-- per alert, those of its highest-scoring transaction.
ALTER TABLE alert_transactions ADD COLUMN top_features jsonb NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN top_features jsonb NOT NULL DEFAULT '[]';
