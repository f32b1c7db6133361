"""Shared fixtures: one Spark session, one local stack, both for the whole test run.

The tests run their own stack (var/test-stack, own ports) so a developer's running
demo stack is never touched; it is started on first use and stopped at the end.
"""

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("FRAUD_STACK_DIR", str(ROOT / "var" / "test-stack"))

from fraud.config import load_config  # noqa: E402  (after FRAUD_STACK_DIR is set)
from fraud_devstack import default_stack  # noqa: E402


@pytest.fixture(scope="session")
def config(tmp_path_factory):
    """conf/local.yaml with the lake and checkpoints in a per-run temporary folder."""
    tmp = tmp_path_factory.mktemp("lake")
    environ = {**os.environ, "FRAUD_LAKE_ROOT": str(tmp / "lake"), "FRAUD_CHECKPOINT_ROOT": str(tmp / "checkpoints")}
    return load_config(ROOT / "conf" / "local.yaml", environ=environ)


@pytest.fixture(scope="session")
def stack(config):
    """The running test stack's status (Kafka + PostgreSQL), started once per run."""
    test_stack = default_stack()
    status = test_stack.up(config)
    yield status
    test_stack.down()


@pytest.fixture(scope="session")
def spark(config):
    from dataclasses import replace

    from fraud.spark import build_session

    # No state-store maintenance in this session: after an in-process catch-up stops, its
    # background pass would still upload a RocksDB snapshot into that pipeline's checkpoint, in
    # the middle of what a test does next with the folder (the job's own processes keep it).
    no_maintenance = {**config.spark.extra_conf, "spark.sql.streaming.stateStore.maintenanceInterval": "24h"}
    spark_conf = replace(config.spark, shuffle_partitions=2, ui_enabled=False, driver_memory="3g",
                         extra_conf=no_maintenance)
    session = build_session(replace(config, spark=spark_conf), app_name="fraud-tests")
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture
def unique_name():
    """A fresh name per test for topics, tables and databases: tests never share state."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


# The end-to-end and chaos pipelines run no GX checkpoint (~10 s of CPU on a catch-up's first
# batch, and on a job's beside its start-up): tests/test_quality.py runs it in the stream and checks
# its results.
NO_GX = {"quality__gx_every_n_batches": 0}

# The live runs of tests/test_stream_e2e.py: the simulator's own profile, and the profile the gate
# holds out (other currencies, payment methods, item types, categories and timings).
LIVE_RUNS = {"e2e-live-1": dict(seed=31), "e2e-eu": dict(seed=41, profile="eu_marketplace")}


@pytest.fixture(scope="session")
def live_traffic(stack, tmp_path_factory):
    """(pipeline, {test id: future of its run summary}): paced live runs (``LIVE_RUNS``) into the
    topics of a pipeline of their own, sent by background threads from the moment the model starts
    training (``trained_pipeline`` requests this fixture first). A live run is minutes of wall time
    at a few % of one core, however few its events: its fraud sequences run to their end in event
    time (``finish_sequences``). The job reads the topics once the model is registered, as a job
    (re)started after traffic arrived would."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline_support import make_pipeline, simulate_live

    pipe = make_pipeline(stack, tmp_path_factory.mktemp("live"), **NO_GX)
    pool = ThreadPoolExecutor(len(LIVE_RUNS), thread_name_prefix="live-run")
    # 100 events/s: enough fraud sequences per domain, and fewer events keep the catch-up short.
    futures = {test_id: pool.submit(simulate_live, pipe, test_id, rate=100.0, finish_sequences=True, **kwargs)
               for test_id, kwargs in LIVE_RUNS.items()}
    yield pipe, futures
    pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def trained_pipeline(stack, spark, live_traffic, tmp_path_factory):
    """A pipeline with a registered model trained on history that went through the job (the
    end-to-end tests score with it; the chaos tests and the live runs copy its model)."""
    from fraud.model.training import run_training
    from fraud_simulator.history import test_ids, write_gate_events, write_history
    from fraud_simulator.run import replay_file
    from pipeline_support import make_pipeline

    root = tmp_path_factory.mktemp("e2e")
    # The history in one batch, as before kafka.max_offsets_per_trigger came down to 50,000: the forest's
    # bagging follows silver's file layout, and the gate's per-class floors sit close to what one
    # layout gives (friendly fraud's F1 0.65 in four batches, 0.74 in one; issue #40).
    pipe = make_pipeline(stack, root, kafka__max_offsets_per_trigger=200_000, **NO_GX)
    for path in write_history(pipe.config, root / "history"):  # the demo's history: three profiles
        replay_file(pipe.config, path)
    write_gate_events(pipe.config)
    pipe.catch_up(spark)
    status = run_training(spark, pipe.config, test_ids("train"), test_ids("eval"), promote=True)
    assert status == 0, "the model trained on streamed history must pass the gate"
    return pipe


def pytest_collection_modifyitems(config, items):
    """Every test that reaches the local stack (Kafka, PostgreSQL) carries the ``integration`` marker,
    so ``make test-fast`` (``-m "not integration"``) never starts it: a test that uses the ``stack``
    fixture, directly or through another fixture, without the marker stops the run at collection.

    Tests marked ``stops_services`` run last: they stop the shared stack's broker or server, so every
    other user of it (the end-to-end live runs, which send for minutes from the start of the session)
    must be done by then. Run in file order, such a test waited ~100 s for the live runs to end."""
    unmarked = [item.nodeid for item in items
                if "stack" in getattr(item, "fixturenames", ()) and item.get_closest_marker("integration") is None]
    if unmarked:
        raise pytest.UsageError("tests that use the local stack need @pytest.mark.integration: " + ", ".join(unmarked))
    items.sort(key=lambda item: item.get_closest_marker("stops_services") is not None)  # stable: file order otherwise


@pytest.fixture
def stack_home():
    """A folder for a stack of a test's own, inside the project: the local PostgreSQL runs as a system
    user, and the stack opens no folder outside the project to it (pytest's own are 0700)."""
    import shutil

    home = ROOT / "var" / "test-stacks" / uuid.uuid4().hex[:12]
    home.mkdir(parents=True)
    yield home
    shutil.rmtree(home, ignore_errors=True)
