"""``python -m fraud.detection``: waiting for the job to process a run (``--wait``), then its figures."""

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.types.json import Jsonb

from fraud.cli import UserError
from fraud.detection import main

from pipeline_support import create_database, write_config

pytestmark = pytest.mark.integration


def test_wait_refuses_in_one_line_until_the_job_has_processed_the_run(stack, tmp_path, unique_name, capsys):
    dsn = create_database(stack["postgres"]["dsn"], unique_name("fraud_evaluate"))
    config = write_config(tmp_path / "conf.yaml", topics={"gaming": "g", "fintech": "f", "ecommerce": "e"},
                          dsn=dsn, bootstrap=stack["kafka"]["bootstrap"], lake=tmp_path / "lake",
                          checkpoints=tmp_path / "checkpoints")
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO simulation_runs (test_id, started_at, status, domains, seed, events_sent)"
                     " VALUES ('run-1', %s, 'completed', ARRAY['gaming'], 1, 10)", (now - timedelta(seconds=30),))
    args = ["--test-id", "run-1", "--config", str(config), "--wait", "0.3"]
    with pytest.raises(UserError, match=r"^the streaming job has not processed run 'run-1' within 0\.3 s"):
        main(args)

    with psycopg.connect(dsn, autocommit=True) as conn:  # the job's batch that read the run's 10 events
        conn.execute(
            "INSERT INTO batch_metrics (query_id, batch_id, started_at, finished_at, input_rows, input_rows_by_topic,"
            " bronze_rows, silver_rows, quarantine_rows, quarantine_by_reason, gold_rows, alert_rows, step_ms,"
            " kafka_lag) VALUES ('q', 0, %s, %s, 10, %s, 10, 10, 0, %s, 10, 0, %s, 0)",
            (now - timedelta(seconds=5), now, Jsonb({"g": 10}), Jsonb({}), Jsonb({})))
    assert main(args) == 0
    assert "latency ms" in capsys.readouterr().out

    with pytest.raises(SystemExit) as bad:
        main(["--test-id", "run-1", "--config", str(config), "--wait", "-1"])
    assert bad.value.code == 2 and "--wait must be 0 or more" in capsys.readouterr().err
