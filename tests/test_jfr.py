"""The benchmark's JFR summary: samples read from ``jfr print`` text, by thread group."""

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
