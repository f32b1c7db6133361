-- Traffic the simulator did not make: two tiers of data quality, any ISO 4217 currency.
-- A row failing an expectation of the event suite is scored and flagged, not quarantined (unless
-- quality.actions says quarantine). rows_flagged: rows scored with at least one flag.
ALTER TABLE quality_results ADD COLUMN IF NOT EXISTS rows_flagged bigint;
-- An alerted transaction's currency and the expectations it failed (empty: none), for the analyst.
ALTER TABLE alert_transactions ADD COLUMN IF NOT EXISTS currency text;
ALTER TABLE alert_transactions ADD COLUMN IF NOT EXISTS quality_flags text[] NOT NULL DEFAULT '{}';
-- Amounts keep up to four decimals (KWD has three minor units, CLF four) and IDR-sized magnitudes.
ALTER TABLE alert_transactions ALTER COLUMN amount TYPE numeric(22, 4);
ALTER TABLE alerts ALTER COLUMN total_amount TYPE numeric(22, 4);
