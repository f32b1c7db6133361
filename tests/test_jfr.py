"""The benchmarks' readers: the JFR summary (samples from ``jfr print`` text, by thread group), the latency A/B's cycle, the end of start-up."""

from benchmarks.jfr import TASK_THREAD, parse_samples, thread_group

PRINTED = """\
jdk.ExecutionSample {
  startTime = 09:15:18.294
  sampledThread = "Executor task launch worker for task 3.0 in stage 5.0 (TID 10)" (javaThreadId = 95)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage3.processNext() line: 12
    org.apache.spark.executor.Executor$TaskRunner.run() line: 620
    ...
  ]
}

jdk.ExecutionSample {
  startTime = 09:15:18.314
  sampledThread = "stream execution thread for fraud [id = 1f, runId = 2a]" (javaThreadId = 41)
  state = "STATE_RUNNABLE"
  stackTrace = [
    scala.collection.immutable.List.length() line: 458
    org.apache.spark.sql.execution.streaming.MicroBatchExecution.runBatch(SparkSession) line: 800
  ]
}
"""


def test_samples_are_read_with_their_thread_and_stack_root_first():
    assert list(parse_samples(PRINTED)) == [
        (TASK_THREAD, ["org.apache.spark.executor.Executor$TaskRunner.run",
                       "org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage3"
                       ".processNext"]),
        ("stream execution thread for fraud",
         ["org.apache.spark.sql.execution.streaming.MicroBatchExecution.runBatch",
          "scala.collection.immutable.List.length"]),
    ]


def test_thread_groups_drop_the_numbers():
    assert thread_group("Executor task launch worker for task 0.0 in stage 12.0 (TID 40)") == TASK_THREAD
    assert thread_group("Thread-12") == "Thread-"
    assert thread_group("delta-commit-3") == "delta-commit-"


def test_the_latency_ab_reads_the_cycle_of_the_measured_batches_from_the_jobs_log(tmp_path):
    """``benchmarks.latency_ab``: the medians come from the progress lines after the warm-up's last batch."""
    from benchmarks.latency_ab import cycle

    line = ("2026-12-07 21:44:01,000 INFO fraud.metrics: batch {b} progress: durations {{'addBatch': {a},"
            " 'commitOffsets': 40, 'queryPlanning': {p}, 'triggerExecution': {t}, 'walCommit': 50}}, state rows 10,"
            " state commit {c} ms, state memory 5 bytes")
    log = tmp_path / "job.log"
    log.write_text("\n".join([line.format(b=1, a=9000, p=900, t=9999, c=999),  # warm-up: left out
                              line.format(b=2, a=700, p=100, t=900, c=150), "other line",
                              line.format(b=3, a=900, p=140, t=1100, c=170),
                              line.format(b=4, a=800, p=120, t=1000, c=160)]))
    batches, medians = cycle(log, after_batch=1)
    assert batches == 3
    assert medians == {"triggerExecution": 1000, "queryPlanning": 120, "addBatch": 800, "walCommit": 50,
                       "commitOffsets": 40, "stateCommit": 160}


def test_start_up_ends_with_the_first_committed_batch_that_holds_records(tmp_path):
    """``benchmarks.run.records_committed``: a committed batch planned before any record arrived (its end
    offsets are where the query started) does not end the start-up; one past them does."""
    from benchmarks.run import records_committed
    from fraud.checkpoint import CheckpointFiles

    for folder in ("sources/0", "offsets", "commits"):
        (tmp_path / folder).mkdir(parents=True)
    start = '{"orders":{"0":10,"1":7},"wires":{"0":3}}'
    (tmp_path / "sources/0/0").write_text(f"v1\n{start}")
    checkpoint = CheckpointFiles(str(tmp_path))
    assert not records_committed(checkpoint)  # nothing committed yet
    (tmp_path / "offsets/0").write_text(f'v1\n{{"batchWatermarkMs":0}}\n{start}')
    (tmp_path / "commits/0").write_text("v1\n{}")
    assert not records_committed(checkpoint)  # an empty first batch
    (tmp_path / "offsets/1").write_text('v1\n{"batchWatermarkMs":0}\n{"orders":{"0":10,"1":9},"wires":{"0":3}}')
    assert not records_committed(checkpoint)  # planned, not committed
    (tmp_path / "commits/1").write_text("v1\n{}")
    assert records_committed(checkpoint)
