-- Shadow challenger (#21): every scored row's outcome under the current model (the champion) and
-- the challenger, counted per micro-batch (compared with ground truth where the events carry it),
-- and the rows either one alerts on (compared with analyst verdicts). Written after the batch's
-- alerts; the alert path never reads them. Expired by the maintenance job.
CREATE TABLE shadow_outcomes (
    query_id            text NOT NULL,
    batch_id            bigint NOT NULL,
    scored_at           timestamptz NOT NULL,
    champion_version    text NOT NULL,
    challenger_version  text NOT NULL,
    true_class          text NOT NULL,      -- the event's recorded pattern as a model class; 'unknown' without one
    champion_class      text NOT NULL,
    challenger_class    text NOT NULL,
    champion_alert      boolean NOT NULL,
    challenger_alert    boolean NOT NULL,
    rows                bigint NOT NULL,
    PRIMARY KEY (query_id, batch_id, true_class, champion_class, challenger_class, champion_alert, challenger_alert)
);
CREATE INDEX shadow_outcomes_pair ON shadow_outcomes (challenger_version, champion_version);
CREATE INDEX shadow_outcomes_scored ON shadow_outcomes (scored_at);

CREATE TABLE shadow_alerts (
    transaction_id      text NOT NULL,
    challenger_version  text NOT NULL,
    champion_version    text NOT NULL,
    scored_at           timestamptz NOT NULL,
    champion_class      text NOT NULL,
    champion_score      double precision NOT NULL,
    champion_alert      boolean NOT NULL,
    challenger_class    text NOT NULL,
    challenger_score    double precision NOT NULL,
    challenger_alert    boolean NOT NULL,
    PRIMARY KEY (challenger_version, transaction_id)
);
CREATE INDEX shadow_alerts_scored ON shadow_alerts (scored_at);
