-- Who moved the model pointer (#41): every promotion and rollback with the person who made it (the
-- Dash admin's signed-in identity, the model CLI's user), not the component it went through; and
-- the latest promoter on the version's row. The Dash app's role updates model_versions' pointer
-- columns only (fraud.roles), never inserts or edits a version's metrics.
CREATE TABLE model_pointer_changes (
    id                  bigserial PRIMARY KEY,
    action              text NOT NULL CHECK (action IN ('promote', 'rollback')),
    version             text NOT NULL,
    actor               text NOT NULL,
    at                  timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE model_versions ADD COLUMN promoted_by text;
