"""Faults on the real stack: kill the job and count (docs/design.md §8).

One chaos pipeline (own topics, lake, checkpoint, database; the trained model copied in) takes
every fault in turn, and after each campaign the invariants are checked against a reference
pipeline that reads the same topics without ever being interrupted
(``pipeline_support.check_invariants``). The campaign that stops the broker and the server
(``stops_services``) runs at the end of the session, so on a chaos pipeline and reference of its own.

``FRAUD_CHAOS_KILLS`` sets the number of random SIGKILLs (1 in ``make test``, 50 in
``make chaos``). Figures are printed (``-s``) and appended to ``var/chaos/results.jsonl``.

A job is started with spark-submit only where its process must die (a SIGKILL) or its exit is
under test; catch-ups, reference runs and runs that must be refused run in this process on the
tests' Spark session (``Pipeline.catch_up``). Outages are scaled down with the job's own retry
settings (``SCALED_RETRIES``): the ratios that decide the path (outage shorter or longer than the
retries) stay those of production.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from fraud.cli import UserError
from fraud.faults import ENV as FAULT_ENV
from fraud.faults import POINTS
from fraud.checkpoint import CheckpointFiles
from fraud_devstack.process import wait_until
from fraud.stream import checkpoint_location

from conftest import NO_GX, ROOT
from pipeline_support import (CLUSTER, as_role, check_invariants, cluster_work_removed, commit_batches,
                              create_database, kill_group, make_pipeline, simulate_live, write_config)

pytestmark = pytest.mark.integration

RANDOM_KILLS = int(os.environ.get("FRAUD_CHAOS_KILLS", "1"))
# A unit of database work is retried for backoff 0.5 + 1 + 2 s plus, per retry, a wait of up to
# 2 x connect_timeout_s for a pooled connection: ~9.5 s (conf/local.yaml: 15.5 + 5 x 10 s); the
# checkpoint lock waits for the server the same way before it is taken again. A 3 s outage (~4-5 s
# without a server, its restart included) is ridden out in the batch; a 16 s one (past the retries
# by 6 s) fails the batch, and the job waits for the server (up to 120 s) and resumes.
SCALED_RETRIES = {"alerts__max_retries": 3, "alerts__retry_backoff_s": 0.5, "postgres__connect_timeout_s": 1,
                  "postgres__outage_wait_s": 120}
SHORT_OUTAGE_S, LONG_OUTAGE_S = 3, 16
RESULTS = ROOT / "var" / "chaos" / "results.jsonl"


def record(name: str, figures: dict) -> None:
    print(f"\nchaos {name}: {figures}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps({"campaign": name, "kills": RANDOM_KILLS, **figures}) + "\n")


@pytest.fixture(scope="module")
def chaos(stack, trained_pipeline, tmp_path_factory):
    """The pipeline under test and its reference. Small batches (500 records): more batch boundaries to
    crash at, and a job's cold first batches, which every kill repeats, cost less (its JIT is the
    first tier only: ``pipeline_support.job_env``). No GX checkpoint in its batches
    (``tests/test_quality.py`` has them): each one is ~10 s of CPU beside a job whose start-up the
    campaigns repeat."""
    root = tmp_path_factory.mktemp("chaos")
    pipe = make_pipeline(stack, root, kafka__max_offsets_per_trigger=500, **NO_GX, **SCALED_RETRIES)
    shutil.copytree(trained_pipeline.root / "lake" / "models", root / "lake" / "models")
    # The same pipeline in whole batches, for catching up after a campaign: a batch costs ~4 s and
    # ~0.5 ms per record in this process, and the batch size is not what the campaigns test.
    catch_up = write_config(root / "catch-up.yaml", topics=pipe.config.kafka.topics, dsn=pipe.dsn,
                            bootstrap=pipe.bootstrap, lake=root / "lake", checkpoints=root / "checkpoints",
                            **NO_GX, **SCALED_RETRIES)
    ref_dsn = create_database(stack["postgres"]["dsn"], f"fraud_chaosref_{uuid.uuid4().hex[:8]}")
    shutil.copytree(trained_pipeline.root / "lake" / "models", root / "reference" / "lake" / "models")
    reference = write_config(root / "reference.yaml", topics=pipe.config.kafka.topics, dsn=ref_dsn,
                             bootstrap=pipe.bootstrap, lake=root / "reference" / "lake",
                             checkpoints=root / "reference" / "checkpoints", **NO_GX)
    return pipe, catch_up, reference, ref_dsn


def verify(spark, chaos) -> dict:
    """Catch up (an uninterrupted --once run), bring the reference up to date, check the invariants."""
    pipe, catch_up, reference, ref_dsn = chaos
    pipe.catch_up(spark, config_path=catch_up)
    pipe.catch_up(spark, config_path=reference)
    return check_invariants(spark, pipe, ref_dsn)


def next_batch(pipe) -> int:
    """The id the job's next new micro-batch will get (after it replays a planned, uncommitted one)."""
    planned = CheckpointFiles(checkpoint_location(pipe.config)).last_batch("offsets")
    return 0 if planned is None else planned + 1


def committed_to(pipe, table: str, batch_id: int) -> bool:
    return any(max(batches) >= batch_id for batches in commit_batches(pipe.config.table_path(table)).values())


@pytest.mark.timeout(900 + 90 * RANDOM_KILLS)  # a job start and a batch per kill
def test_sigkills_at_each_named_point_then_at_random_under_load(spark, chaos):
    """One campaign, one comparison with the reference: a kill at each named crash point (each in a
    new batch), then ``RANDOM_KILLS`` kills at random moments while a producer sends."""
    pipe = chaos[0]
    seen = {}
    for i, point in enumerate(POINTS):
        # Each kill in a new batch of 500 records (kafka.max_offsets_per_trigger), produced before its job
        # starts: 1,600 records, as the job before may have consumed all there was (``lake_behind`` kills
        # when the lake writer takes its batch, up to stream.lake_commit_interval_s after Spark ran it).
        assert simulate_live(pipe, f"chaos-points-{i}", seconds=1.0, rate=1600.0, seed=51 + i).errors == 0
        batch = next_batch(pipe)
        job = pipe.start_job(env={FAULT_ENV: f"{point}@{batch}"})
        assert job.wait(timeout=600) == -9, f"the job killed itself at {point} of batch {batch}"
        in_pg = batch in pipe.sink_batches()
        in_bronze = committed_to(pipe, "bronze", batch)
        in_gold = committed_to(pipe, "gold", batch)
        # ``lake_behind`` fires once Spark has committed the batch; Spark may commit the next ones too.
        in_commits = (CheckpointFiles(checkpoint_location(pipe.config)).last_batch("commits") or -1) >= batch
        seen[point] = (in_pg, in_bronze, in_gold, in_commits)
    # Each crash left the batch exactly where its point says: (PostgreSQL, bronze, gold, Spark's commit log).
    assert seen["in_pg_transaction"] == (False, False, False, False)
    assert seen["after_pg_commit"] == (True, False, False, False)
    assert seen["before_checkpoint_commit"] == (True, False, False, False)
    assert seen["lake_behind"] == (True, False, False, True), "committed by Spark, in no table: only its stage"
    assert seen["after_bronze"][:2] == (True, True)

    rng = random.Random(7)
    for i in range(RANDOM_KILLS):
        # Load arrives while the job runs and dies: a paced producer for the whole cycle.
        producer = threading.Thread(target=simulate_live, args=(pipe, f"chaos-random-{i}", 25.0, 120.0, 100 + i))
        producer.start()
        before = pipe.sink_batches()
        job = pipe.start_job()
        try:
            assert wait_until(lambda: job.poll() is not None or len(pipe.sink_batches() - before) >= 1, 600,
                              interval_s=0.2), "the job committed a batch"
            assert job.poll() is None, "the job is still running"
            # The jitter is the fault injection, not synchronisation: the kill lands anywhere in the next batch.
            threading.Event().wait(rng.uniform(0.0, 2.5))
        finally:
            kill_group(job)
        producer.join()
    figures = verify(spark, chaos)
    record("kills", {"named_points": len(POINTS), "random_kills": RANDOM_KILLS, **figures})


def test_checkpoint_deleted_or_behind_is_refused(spark, chaos, tmp_path):
    """Refused as a user meets it; the documented recovery is then checked by the next campaign's
    comparison with the reference (``test_an_executor_killed_mid_batch_on_a_cluster``)."""
    pipe, whole_batches = chaos[:2]
    checkpoint = Path(checkpoint_location(pipe.config))
    if not checkpoint.exists():  # run alone (-k): no earlier test made one
        pipe.catch_up(spark, config_path=whole_batches)
    backup = tmp_path / "checkpoint-backup"
    shutil.copytree(checkpoint, backup)
    simulate_live(pipe, "chaos-behind", seconds=6.0, rate=400.0, seed=61)
    pipe.catch_up(spark, config_path=whole_batches)  # the tables move past the backup

    current = tmp_path / "checkpoint-current"
    checkpoint.rename(current)
    # As a user meets it: spark-submit ends with exit 2 and one line, no traceback (spark-submit's
    # Python runner sends the driver's stderr to its stdout).
    deleted = pipe.job_result()
    assert deleted.returncode == 2, deleted.stdout[-2000:]
    error = next(line for line in deleted.stdout.splitlines() if line.startswith("error: "))
    assert "is missing, but table" in error and "Traceback" not in deleted.stdout + deleted.stderr

    shutil.copytree(backup, checkpoint)
    with pytest.raises(UserError, match="is behind the tables"):
        pipe.catch_up(spark, config_path=whole_batches)

    shutil.rmtree(checkpoint)
    current.rename(checkpoint)  # the documented recovery: put the right checkpoint back


class LiveJob:
    """The continuous job (spark-submit, its own process group), for faults injected while it runs."""

    def __init__(self, pipe, config_path: Path | None = None):
        self.pipe = pipe
        self.job = pipe.start_job(config_path)

    def commits(self, batches: int = 1, timeout_s: float = 600) -> None:
        """Wait until the job has committed ``batches`` more batches, and assert it is still running."""
        before = self.pipe.sink_batches()
        assert wait_until(lambda: self.job.poll() is not None or len(self.pipe.sink_batches() - before) >= batches,
                          timeout_s, interval_s=0.2), f"the job committed {batches} more batch(es)"
        assert self.job.poll() is None, f"the job still runs: {self.log()[-3000:]}"

    def log(self) -> str:
        return self.job.log_path.read_text(errors="replace")

    def stop(self) -> None:
        kill_group(self.job)


def outage(stack_service: str, down_s: float, config) -> None:
    """Stop a service of the shared test stack for ``down_s`` seconds (the outage's length), then start it."""
    from fraud_devstack import default_stack

    stack = default_stack()
    stack.stop_service(stack_service)
    try:
        threading.Event().wait(down_s)
    finally:
        stack.start_service(stack_service, config)


@pytest.mark.stops_services
def test_faults_while_the_job_runs(spark, chaos, config, live_traffic):
    """One running job takes, in turn: a second instance started beside it (refused), every database
    connection killed, the server down briefly and then past the retries, a model promoted, and the
    broker restarted under load. One job start for all of them; the invariants after the campaign."""
    from concurrent.futures import wait

    from fraud.registry import Registry

    # The end-to-end tests' live runs send their ground truth to this server, which the steps below
    # stop: the faults start after them (``stops_services`` runs this test last, so they are done).
    wait(live_traffic[1].values())
    pipe = chaos[0]
    registry = Registry.for_config(pipe.config)
    before = registry.current_version()
    newer = registry.next_version()
    models = Path(pipe.config.table_path("models")) / "versions"
    shutil.copytree(models / before, models / newer)  # the same model under a new version: alerts must not change
    # A backlog of ~20 batches (the steps below take ~13) rather than a producer beside the job for
    # the database faults: the simulator writes its ground truth to the same server, down on purpose.
    simulate_live(pipe, "chaos-live", seconds=1.0, rate=10_000.0, seed=310)
    live = LiveJob(pipe)
    producer = threading.Thread(target=simulate_live, args=(pipe, "chaos-broker", 20.0, 150.0, 320))
    try:
        live.commits()
        # 1. A second instance on the same checkpoint is refused, and the first one runs on.
        with pytest.raises(UserError, match="another instance of the streaming job is running"):
            pipe.catch_up(spark)
        # 2. Every connection of the job killed mid-run (the lock's too): retried, lock taken again.
        with pipe.connect() as conn:
            killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
        assert killed >= 2
        live.commits(2)
        # 3. The server down briefly: the batch's retries ride it out, in-process.
        outage("postgres", SHORT_OUTAGE_S, config)
        live.commits(2)
        assert "PostgreSQL unavailable" in live.log() and "PostgreSQL is back" not in live.log()
        # 4. Down past the retries: the batch fails, the job waits for the server and resumes.
        outage("postgres", LONG_OUTAGE_S, config)
        live.commits(2)
        assert "PostgreSQL is back: restarting the query from its checkpoint" in live.log()
        # 5. A model promoted: used from the next batch on, without a restart.
        registry.promote(newer)
        with pipe.connect() as conn:
            assert wait_until(lambda: conn.execute("SELECT count(*) FROM batch_metrics WHERE model_version = %s",
                                                   (newer,)).fetchone()[0] > 0, 300, interval_s=0.5)
        # 6. The broker restarted under load (a paced producer beside the job from here on).
        producer.start()
        live.commits()
        outage("kafka", 5, config)
        live.commits(3)
    finally:
        live.stop()
        if producer.is_alive():
            producer.join()
    figures = verify(spark, chaos)
    gold = spark.read.format("delta").load(pipe.config.table_path("gold"))
    versions = {r[0] for r in gold.select("model_version").distinct().collect()}
    assert {before, newer} <= versions, "gold records the version that scored each row"
    record("faults while running", {"connections_killed": killed, "versions": sorted(versions), **figures})


def test_an_executor_killed_mid_batch_on_a_cluster(spark, chaos):
    """Every other test runs the job in one JVM (local[*]). Here it runs with two executor processes:
    the jars (Delta, the Kafka source, the velocity operator), the state store and each batch's rows
    reach them without a driver-only shortcut, and one executor SIGKILLed while batches run is lost
    and replaced while the job goes on; its tasks rerun elsewhere, and the chaos invariants hold."""
    import psutil

    pipe = chaos[0]
    cluster = write_config(pipe.root / "cluster.yaml", topics=pipe.config.kafka.topics, dsn=pipe.dsn,
                           bootstrap=pipe.bootstrap, lake=pipe.root / "lake", checkpoints=pipe.root / "checkpoints",
                           spark__master=CLUSTER, kafka__max_offsets_per_trigger=500, **NO_GX, **SCALED_RETRIES)
    producer = threading.Thread(target=simulate_live, args=(pipe, "chaos-cluster", 40.0, 150.0, 330))
    producer.start()
    with cluster_work_removed():
        live = LiveJob(pipe, cluster)

        def executors() -> set[int]:
            found = set()
            for child in psutil.Process(live.job.pid).children(recursive=True):
                try:
                    if child.status() != psutil.STATUS_ZOMBIE and any(
                            arg.endswith(".CoarseGrainedExecutorBackend") for arg in child.cmdline()):
                        found.add(child.pid)
                except psutil.Error:  # gone meanwhile
                    pass
            return found

        try:
            live.commits()
            first = executors()
            assert len(first) == 2, "two executor processes beside the driver"
            # The jitter is the fault injection, not synchronisation: the kill lands anywhere in a batch.
            threading.Event().wait(random.Random(11).uniform(0.0, 1.5))
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            live.commits(3)
            # The standalone master replaced it: two executors again, one of them new.
            assert wait_until(lambda: len(executors()) == 2 and victim not in executors(), 120, interval_s=0.5)
        finally:
            live.stop()
            producer.join()
    figures = verify(spark, chaos)
    record("executor killed on a cluster", figures)


def test_kafka_data_loss_fails_loudly(spark, stack, tmp_path):
    """Records deleted from a topic (retention) before the job read them: the job stops with one line."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    pipe = make_pipeline(stack, tmp_path)
    topic = pipe.config.kafka.topics["gaming"]
    producer = Producer({"bootstrap.servers": pipe.bootstrap, "batch.size": pipe.config.stream.max_record_bytes})
    event = {"transaction_id": "t-0", "domain": "gaming", "actor_id": "a", "timestamp": "2026-12-01T00:00:00Z"}
    for i in range(30):
        producer.produce(topic, json.dumps({**event, "transaction_id": f"t-{i}"}).encode(), partition=0)
    producer.flush(30)
    pipe.catch_up(spark)
    for i in range(30, 60):
        producer.produce(topic, json.dumps({**event, "transaction_id": f"t-{i}"}).encode(), partition=0)
    producer.flush(30)
    admin = AdminClient({"bootstrap.servers": pipe.bootstrap})
    for future in admin.delete_records([TopicPartition(topic, 0, 60)]).values():
        future.result(timeout=30)  # what retention does to records nobody read in time
    # The job's last word is one line with the way out (a UserError: the CLI prints it alone, exit 2).
    with pytest.raises(UserError) as refused:
        pipe.catch_up(spark)
    error = str(refused.value)
    assert "Kafka no longer holds records the checkpoint has not processed" in error
    assert "fail_on_data_loss" in error and "\n" not in error


def test_job_logs_hold_no_password(chaos):
    """The chaos pipeline's database password (a canary) never reaches the output of any of its
    jobs (continuous and --once, killed and refused ones included)."""
    pipe = chaos[0]
    password = psycopg_password(as_role(pipe.dsn, "stream"))
    if not list(pipe.root.glob("job-*.log")):  # run alone (-k): no fault test left a log, so crash one job
        simulate_live(pipe, "chaos-canary", seconds=2.0, rate=400.0, seed=71)
        assert pipe.start_job(env={FAULT_ENV: f"after_pg_commit@{next_batch(pipe)}"}).wait(timeout=600) == -9
    logs = list(pipe.root.glob("job-*.log"))
    assert logs and password
    assert not [p.name for p in logs if password in p.read_text(errors="replace")]


def psycopg_password(dsn: str) -> str | None:
    """The password the DSN authenticates with: inline, or the last field of its user's passfile line."""
    import psycopg

    params = psycopg.conninfo.conninfo_to_dict(dsn)
    if params.get("password"):
        return params["password"]
    lines = Path(params["passfile"]).read_text().splitlines() if params.get("passfile") else []
    return next((line.split(":", 4)[4] for line in lines if line.split(":")[3] == params["user"]), None)
