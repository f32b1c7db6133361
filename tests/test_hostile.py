"""No record stops the stream (#38): hostile records through real Kafka and the real job, and each
sink's refusals isolated into quarantine while the rest of the batch commits.

The campaign draws records a producer can send (Hypothesis: every contract field gets its turn at
control characters, lone surrogates, invalid UTF-8, strings up to the record bound, extreme,
subnormal, non-finite and negative-zero numbers, wrong types, duplicate keys, deep nesting, huge
arrays, arbitrary bytes and tombstones), mixes them with simulator traffic and runs the job. It
holds when the job never fails, every record is in bronze and in exactly one of silver and
quarantine, the simulator traffic's alerts equal those of a run without the hostile records, and no
batch took more attempts than ``stream.max_batch_attempts``. ``FRAUD_HOSTILE_RECORDS`` sets the
number of hostile records (``make test``: 200; ``make hostile``: 5,000), ``FRAUD_HOSTILE_SEED`` the draw.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import string
import subprocess
import sys
from collections import Counter

import psycopg
import pyarrow as pa
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fraud.parse import kafka_records
from fraud.pipeline import batch_records
from fraud.quarantine import quarantined, replayable, send, summary
from fraud.schemas import event_schema
from fraud_simulator.run import replay_file

from conftest import NO_GX, ROOT
from pipeline_support import alert_snapshot, check_invariants, end_offsets, make_pipeline, real_batch_writer

pytestmark = pytest.mark.integration

HOSTILE_RECORDS = int(os.environ.get("FRAUD_HOSTILE_RECORDS", "200"))
HOSTILE_SEED = int(os.environ.get("FRAUD_HOSTILE_SEED", "38"))
CHUNK = 100  # records per Hypothesis example
NORMAL_TEST_ID = "hostile-normal"
DOMAINS = ("gaming", "fintech", "ecommerce")
RESULTS = ROOT / "var" / "hostile" / "results.jsonl"


# --- what a producer can send ------------------------------------------------------------------

def contract_fields(domain: str) -> list[tuple[str, str]]:
    """(field, kind) of a domain's events: ``string``, ``number`` or ``nested``."""
    kinds = {"StringType": "string", "DoubleType": "number", "IntegerType": "number", "BooleanType": "bool"}
    return [(f.name, kinds.get(type(f.dataType).__name__, "nested")) for f in event_schema(domain).fields]


CONTROL = st.sampled_from([chr(c) for c in range(0x20)] + ["\x7f"])
TIMESTAMPS = st.sampled_from(["+294247-01-01T00:00:00Z", "-290308-12-21T19:59:06Z", "0001-01-01T00:00:00Z",
                              "9999-12-31T23:59:59+14:00", "2026-02-30T00:00:00Z", "2026-11-28 12:00", "", "now"])
NUMBERS = st.sampled_from(["5e-324", "1e-310", "-0.0", "0", "1e308", "1e400", "-1e400", "NaN", "Infinity",
                           "-Infinity", "9223372036854775808", "-1", "1e-7", "0.000001"])


def wrong_types(n: str):
    """JSON of another type than the field's. Each carries the record's ``n``: a string field reads any
    of them as its JSON text, and two records must not end up with one transaction id."""
    number = int(n, 16) % 10**15
    return st.sampled_from([f'{{"n": "{n}"}}', f'["{n}"]', f'["{n}", ["{n}", [{number}]]]', str(number),
                            f"{number}.5", "null", f'{{"a": {{"b": true, "n": "{n}"}}}}'])


@st.composite
def hostile(draw, bases: dict, max_record_bytes: int):
    """(value or None, Kafka key, topic domain, mutation class, the reasons one of which it must be
    quarantined with (None: it may land anywhere), the producer's timestamp in ms (None: now), the
    token in its ids)."""
    domain = draw(st.sampled_from(DOMAINS))
    n = draw(st.uuids()).hex[:16]  # random bits: unique across the examples of a draw too
    event = {**bases[domain], "actor_id": f"hostile-{n}", "transaction_id": f"hostile-{n}", "test_id": "hostile"}
    field, kind = draw(st.sampled_from(contract_fields(domain)))
    mutation = draw(st.sampled_from(["control", "surrogate", "invalid_utf8", "long", "number", "wrong_type",
                                     "duplicate_key", "deep", "huge_array", "extra_nul", "oversize", "bytes",
                                     "tombstone", "event_time", "kafka_time"]))
    kafka_time = None  # the producer's timestamp: now
    key = draw(st.one_of(st.none(), st.binary(max_size=40), st.just(event["actor_id"].encode())))
    topic_domain = draw(st.sampled_from([domain] * 4 + list(DOMAINS)))  # now and then on another domain's topic
    text = json.dumps(event)
    must = None
    # Text mutations keep the field's value around them, so ids stay unique (the contract's promise).
    original = json.dumps(event.get(field))
    if mutation == "control" and kind == "string":
        value = json.dumps({**event, field: f"{event[field]}{draw(CONTROL)}b"}).encode()
        must = f"bad_chars:{field}"
    elif mutation == "surrogate" and kind == "string":
        value = text.replace(original, original[:-1] + '\\ud83d b\\udc00"', 1).encode()
    elif mutation == "invalid_utf8" and kind == "string":
        value = text.replace(original, original[:-1] + 'QQ"', 1).encode().replace(b"QQ", draw(st.sampled_from(
            [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])))
    elif mutation == "long" and kind == "string":
        room = max_record_bytes - len(text) - 64
        value = json.dumps({**event, field: event[field] + "x" * draw(st.integers(257, room))}).encode()
        must = f"too_long:{field}"
    elif mutation == "number" and kind == "number":  # on a string field numbers are wrong types (unique)
        token = draw(NUMBERS)
        value = text.replace(f'"{field}": {json.dumps(event[field])}', f'"{field}": {token}', 1).encode()
        if field == "amount" and token not in ("1e-7", "0.000001"):  # at or under the floor, or no finite amount
            must = "out_of_range:amount"
    elif mutation == "wrong_type":
        value = text.replace(f'"{field}": {json.dumps(event[field])}', f'"{field}": {draw(wrong_types(n))}', 1).encode()
    elif mutation == "duplicate_key":
        again = draw(st.one_of(wrong_types(n), st.just(json.dumps(f"dup-{n}"))))
        value = (text[:-1] + f', "{field}": {again}}}').encode()
    elif mutation == "deep":
        depth = draw(st.integers(10, 3000))
        value = (text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}").encode()
    elif mutation == "huge_array":
        size = draw(st.integers(100, (max_record_bytes - len(text)) // 3))
        value = (text[:-1] + ', "many": [' + ",".join(["1"] * size) + "]}").encode()
    elif mutation == "extra_nul":
        value = json.dumps({**event, "note": "line\u0000two"}).encode()
        must = "bad_chars:extra_fields"
    elif mutation == "oversize":  # over the contract's bound, under what the topic takes with its framing
        value = json.dumps({**event, "padding": "x" * (max_record_bytes + 200 - len(text))}).encode()
        must = "oversize"
    elif mutation == "event_time":
        value = json.dumps({**event, "timestamp": draw(TIMESTAMPS)}).encode()
        must = ("bad_type:timestamp", "out_of_range:timestamp")
    elif mutation == "kafka_time":  # a producer clock decades behind (the broker refuses one far ahead)
        value = text.encode()
        kafka_time = draw(st.integers(1, 10**12))  # milliseconds since 1970: up to 2001
        must = ("out_of_range:timestamp",)
    elif mutation == "bytes":
        value = draw(st.binary(min_size=1, max_size=200))
    elif mutation == "tombstone":
        value = None
        must = "malformed_json"
    else:  # a text mutation drawn for a field that is not a string: the record as it is, valid
        mutation = "none"
        value = text.encode()
    return value, key, topic_domain, mutation, (must,) if isinstance(must, str) else must, kafka_time, n


def base_events(pipe, tmp_path) -> dict:
    from fraud_simulator.__main__ import build_options
    from fraud_simulator.run import run_simulation

    path = tmp_path / "bases.jsonl"
    options = build_options(pipe.config, domain="all", load_level=None, rate=None, events=60, duration=None,
                            fraud_rate=None, seed=7, test_id="bases", pattern_weights=None, output=str(path),
                            profile=None, finish_sequences=False)
    run_simulation(pipe.config, options)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return {d: next(e for e in events if e["domain"] == d) for d in DOMAINS}


def normal_traffic(pipe, tmp_path, events: int, seed_: int):
    """A simulator file of ``events`` events (its own actors), test id ``NORMAL_TEST_ID``."""
    from fraud_simulator.__main__ import build_options
    from fraud_simulator.run import run_simulation

    path = tmp_path / f"normal-{seed_}.jsonl"
    options = build_options(pipe.config, domain="all", load_level=None, rate=None, events=events, duration=None,
                            fraud_rate=0.3, seed=seed_, test_id=NORMAL_TEST_ID, pattern_weights=None,
                            output=str(path), profile=None, finish_sequences=False)
    run_simulation(pipe.config, options)
    return path


def pipeline_with_model(stack, trained_pipeline, root, **overrides):
    pipe = make_pipeline(stack, root, kafka__max_offsets_per_trigger=400, **NO_GX, **overrides)
    shutil.copytree(trained_pipeline.root / "lake" / "models", root / "lake" / "models")
    return pipe


def produce(pipe, records) -> dict[tuple, tuple]:
    """Send ``records`` (value, key, domain, mutation, must, timestamp) to the pipeline's topics; their
    Kafka positions -> (mutation, must)."""
    positions: dict[tuple, tuple] = {}
    producer = Producer({"bootstrap.servers": pipe.bootstrap, "batch.size": pipe.config.stream.max_record_bytes,
                         "linger.ms": 5})
    for value, key, domain, mutation, must, timestamp, *_ in records:
        topic = pipe.config.kafka.topics[domain]

        def delivered(err, msg, meta=(mutation, must)):
            assert err is None, err
            positions[(msg.topic(), msg.partition(), msg.offset())] = meta

        producer.produce(topic, value=value, key=key, on_delivery=delivered, **({"timestamp": timestamp}
                                                                                 if timestamp else {}))
        producer.poll(0)
    assert producer.flush(60) == 0
    return positions


def lake(spark, pipe, table: str):
    return spark.read.format("delta").load(pipe.config.table_path(table))


# --- the campaign -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def campaign(stack, trained_pipeline, tmp_path_factory):
    """The pipeline the hostile records go to, and a reference pipeline that gets only the normal traffic."""
    root = tmp_path_factory.mktemp("hostile")
    pipe = pipeline_with_model(stack, trained_pipeline, root / "hostile")
    reference = pipeline_with_model(stack, trained_pipeline, root / "reference")
    return pipe, reference, root


@pytest.mark.timeout(900 + HOSTILE_RECORDS // 5)
def test_hostile_records_never_stop_the_job_nor_change_the_other_alerts(spark, campaign):
    pipe, reference, root = campaign
    bases = base_events(pipe, root)
    normal = normal_traffic(pipe, root, 1500, seed_=83)

    # Drawn in lists of CHUNK (Hypothesis refuses an example as large as thousands of records), every
    # example but the first, which is Hypothesis's simplest (every record alike); a quarter more than
    # needed, since examples repeat a few ids, which must be unique throughout.
    @seed(HOSTILE_SEED)
    @settings(max_examples=-(-HOSTILE_RECORDS * 5 // (4 * CHUNK)) + 1, deadline=None, phases=[Phase.generate],
              database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(hostile(bases, pipe.config.stream.max_record_bytes), min_size=CHUNK, max_size=CHUNK,
                    unique_by=lambda record: record[-1]))
    def draw(records):
        examples.append(records)

    examples: list = []
    draw()
    seen: set = set()
    drawn = [r for chunk in examples[1:] for r in chunk if r[-1] not in seen and not seen.add(r[-1])][:HOSTILE_RECORDS]
    assert len(drawn) == HOSTILE_RECORDS and len({record[3] for record in drawn}) >= 12, "a varied draw"
    # Half the hostile records before the simulator's, half after: they share batches with it.
    hostile_before = produce(pipe, drawn[: len(drawn) // 2])
    replay_file(pipe.config, normal)
    hostile_after = produce(pipe, drawn[len(drawn) // 2:])
    replay_file(reference.config, normal)

    pipe.catch_up(spark)  # the job's --once run: it returns, or the test fails with its error
    reference.catch_up(spark)

    figures = check_invariants(spark, pipe)
    mine, theirs = alert_snapshot(pipe.dsn, NORMAL_TEST_ID), alert_snapshot(reference.dsn, NORMAL_TEST_ID)
    assert theirs, "the simulator traffic raises alerts"
    assert mine == theirs, "the hostile records change none of the other traffic's alerts"

    positions = {**hostile_before, **hostile_after}
    quarantined = {(r["topic"], r["partition"], r["offset"]): r["reasons"]
                   for r in lake(spark, pipe, "quarantine").select("topic", "partition", "offset", "reasons").collect()}
    for position, (mutation, must) in positions.items():
        if must is not None:
            assert set(must) & set(quarantined.get(position, [])), (mutation, must, quarantined.get(position))
    with psycopg.connect(pipe.dsn) as conn:
        (attempts,), = conn.execute("SELECT max(attempts) FROM batch_metrics").fetchall()
    assert attempts <= pipe.config.stream.max_batch_attempts

    classes = Counter(mutation for mutation, _ in positions.values())
    reasons = Counter(r for position in positions for r in quarantined.get(position, []))
    result = {"hostile": len(positions), "seed": HOSTILE_SEED, "classes": dict(classes),
              "quarantined": sum(1 for p in positions if p in quarantined), "reasons": dict(reasons),
              "max_attempts": attempts, **figures}
    print(f"\nhostile campaign: {result}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(result) + "\n")


# --- each sink's refusals, through the job ------------------------------------------------------

def incompressible(n: int) -> str:
    """An id PostgreSQL cannot compress under its 2,704-byte index row, as a producer's bug may send."""
    return "".join(random.Random(n).choices(string.ascii_letters + string.digits, k=n))


def test_records_postgresql_or_delta_refuse_are_isolated_and_the_rest_commits(spark, stack, trained_pipeline,
                                                                             tmp_path):
    """With the contract's string bound lifted, an alerting sequence whose actor id is 3,000 characters
    reaches PostgreSQL, whose index refuses it; an operator's CHECK constraint on silver refuses another
    record. Each record lands in quarantine as ``unprocessable:<error class>``, the rest commits, and
    batch_metrics counts them."""
    pipe = pipeline_with_model(stack, trained_pipeline, tmp_path, stream__max_string_chars=100_000)
    normal = [json.loads(line) for line in normal_traffic(pipe, tmp_path, 600, seed_=91).read_text().splitlines()]
    farming = [e for e in normal if e["pattern"] == "fraud_gold_farming"]
    actor = farming[0]["actor_id"]
    long_actor = incompressible(3000)
    first = [{**e, "actor_id": long_actor} if e["actor_id"] == actor else e for e in normal[:300]]
    produce(pipe, [(json.dumps(e).encode(), e["actor_id"].encode(), e["domain"], "", None, None) for e in first])
    pipe.catch_up(spark)

    spark.sql(f"ALTER TABLE delta.`{pipe.config.table_path('silver')}`"
              " ADD CONSTRAINT no_poison CHECK (transaction_id NOT LIKE 'poison-%')")
    poison = {**normal[300], "transaction_id": "poison-1"}
    second = normal[301:] + [poison]
    produce(pipe, [(json.dumps(e).encode(), e["actor_id"].encode(), e["domain"], "", None, None) for e in second])
    pipe.catch_up(spark)

    check_invariants(spark, pipe)
    quarantine = lake(spark, pipe, "quarantine").select(
        F.get_json_object(F.col("value").cast("string"), "$.transaction_id").alias("transaction_id"), "reasons")
    reasons = {r["transaction_id"]: r["reasons"] for r in quarantine.collect()}
    long_ones = [e["transaction_id"] for e in first if e["actor_id"] == long_actor]
    assert long_ones and all(reasons.get(t) == ["unprocessable:ProgramLimitExceeded"] for t in long_ones), reasons
    assert reasons.get("poison-1") == ["unprocessable:DELTA_VIOLATE_CONSTRAINT_WITH_VALUES"], reasons
    silver_ids = {r[0] for r in lake(spark, pipe, "silver").select("transaction_id").collect()}
    assert not silver_ids & {"poison-1", *long_ones}
    with psycopg.connect(pipe.dsn) as conn:
        (isolated,), = conn.execute("SELECT sum(isolated_rows) FROM batch_metrics").fetchall()
        stored = [len(r[0]) for r in conn.execute("SELECT isolated FROM sink_progress")]
    assert isolated == len(long_ones) + 1
    assert sum(stored) == len(long_ones), "the refused positions are kept with the batch's progress"

    # What an operator does next (docs: operations): see them, mend the cause, send them back.
    records_df = quarantined(spark, pipe.config, since_hours=1.0)
    assert ("unprocessable:ProgramLimitExceeded", len(long_ones)) in summary(records_df)
    chosen = replayable(records_df, "unprocessable:DELTA")
    assert [json.loads(value)["transaction_id"] for _, _, value in chosen] == ["poison-1"]
    before = end_offsets(pipe.bootstrap, pipe.config.kafka.topic_list())
    send(pipe.config, chosen)
    assert end_offsets(pipe.bootstrap, pipe.config.kafka.topic_list()) == before + 1


# --- the alert path's own isolation, on a real foreachBatch function ------------------------------

@pytest.fixture
def writer(spark, config, stack, tmp_path):
    no_gx = dataclasses.replace(config, quality=dataclasses.replace(config.quality, gx_every_n_batches=0))
    with real_batch_writer(spark, no_gx, stack, tmp_path) as writer_dsn_config:
        yield writer_dsn_config


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> list[dict]:
    """40 simulator events."""
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--events", "40", "--seed", "5", "--output", str(path)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_the_stage_refuses_are_isolated(spark, writer, events, monkeypatch):
    """A stage write the Arrow/Parquet writer refuses for a row's value: that row is isolated."""
    alert_path, dsn, cfg = writer
    poisoned = {**events[3], "transaction_id": "poison-stage"}
    stage_type = type(alert_path.lake.stage)
    write, probe = stage_type.write, stage_type.probe

    def refuse(rows):
        if "poison-stage" in rows.column("transaction_id").to_pylist():
            raise pa.ArrowInvalid("value refused")

    monkeypatch.setattr(stage_type, "write", lambda self, rows, b: (refuse(rows), write(self, rows, b)))
    monkeypatch.setattr(stage_type, "probe", staticmethod(lambda rows: (refuse(rows), probe(rows))))
    alert_path(batch_records(kafka_records(spark, cfg, events + [poisoned]), cfg), 0)
    alert_path.lake.flush()
    assert landed(spark, cfg) == ({e["transaction_id"] for e in events},
                                  {"poison-stage": ["unprocessable:ArrowInvalid"]})


def test_a_batch_that_fails_every_attempt_isolates_the_records_behind_it(spark, writer, events, monkeypatch):
    """An error no sink isolates (here: one the scoring step raises for one record, every time): the
    batch is tried ``max_batch_attempts`` times in all, the last after that record is isolated."""
    import fraud.micro_batch

    alert_path, dsn, cfg = writer
    poisoned = {**events[5], "transaction_id": "poison-score"}
    silver_and_gold = fraud.micro_batch.silver_and_gold

    def fail_on_poison(rows_df, model, config):
        silver, gold = silver_and_gold(rows_df, model, config)
        if "poison-score" in silver.column("transaction_id").to_pylist():
            raise ZeroDivisionError("a defect that one record triggers")
        return silver, gold

    monkeypatch.setattr(fraud.micro_batch, "silver_and_gold", fail_on_poison)
    alert_path(batch_records(kafka_records(spark, cfg, events + [poisoned]), cfg), 0)
    alert_path.lake.flush()
    assert landed(spark, cfg) == ({e["transaction_id"] for e in events},
                                  {"poison-score": ["unprocessable:ZeroDivisionError"]})
    with psycopg.connect(dsn) as conn:
        (attempts, isolated), = conn.execute("SELECT attempts, isolated_rows FROM batch_metrics").fetchall()
    assert (attempts, isolated) == (cfg.stream.max_batch_attempts, 1)


def landed(spark, cfg) -> tuple[set, dict]:
    """(transaction ids in silver, {transaction id: reasons} in quarantine)."""
    silver = {r[0] for r in spark.read.format("delta").load(cfg.table_path("silver")).select("transaction_id").collect()}
    quarantine = spark.read.format("delta").load(cfg.table_path("quarantine")).select(
        F.get_json_object(F.col("value").cast("string"), "$.transaction_id"), "reasons").collect()
    return silver, {r[0]: r[1] for r in quarantine}
