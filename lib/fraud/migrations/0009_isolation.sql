-- No record stops the stream (#38): the records PostgreSQL refused in a batch's alert write, as
-- [topic, partition, offset, reason], kept with the batch's progress so a replay isolates the same
-- ones; and per batch, how many records were isolated and how many attempts the batch took.
ALTER TABLE sink_progress ADD COLUMN isolated jsonb NOT NULL DEFAULT '[]';
ALTER TABLE batch_metrics ADD COLUMN isolated_rows integer NOT NULL DEFAULT 0;
ALTER TABLE batch_metrics ADD COLUMN attempts integer NOT NULL DEFAULT 1;
