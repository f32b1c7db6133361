"""B1: the cost of scoring one event, three ways, same model, same events, one Spark session.

(a) one Spark job per event: ``createDataFrame([event])`` + ``transform`` + ``collect`` (the
    replaced design's per-request API path, minus its HTTP hop);
(b) one Spark job per 100 events (the replaced design's batching fix);
(c) in-process per micro-batch, as the streaming job does it: the batch's silver rows are
    cached, scored with ``score_silver`` and the alert rows collected.

Medians over repetitions; min and max show the machine's noise.
"""

from __future__ import annotations

import statistics
import time

from pyspark.sql import DataFrame, SparkSession

from fraud.config import Config
from fraud.score import LoadedModel, score_silver


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _summary(samples_ms: list[float]) -> dict:
    return {"median": round(statistics.median(samples_ms), 3), "min": round(min(samples_ms), 3),
            "max": round(max(samples_ms), 3), "n": len(samples_ms)}


def measure_scoring(spark: SparkSession, config: Config, model: LoadedModel, silver_df: DataFrame, *,
                    per_event_n: int, batch100_n: int, micro_batch_rows: int, repeats: int) -> dict:
    rows = silver_df.limit(max(per_event_n, 100 * batch100_n, micro_batch_rows)).collect()
    schema = silver_df.schema

    def score_rows(chunk) -> None:
        score_silver(spark.createDataFrame(chunk, schema), model, config).collect()

    score_rows(rows[:100])  # warm-up: JIT, codegen cache, model broadcast
    per_event = [_timed(lambda r=r: score_rows([r])) * 1000 for r in rows[:per_event_n]]
    batch100 = [_timed(lambda i=i: score_rows(rows[i * 100:(i + 1) * 100])) * 1000 / 100 for i in range(batch100_n)]

    batch = spark.createDataFrame(rows[:micro_batch_rows], schema).persist()
    batch.count()

    def micro_batch() -> None:
        gold = score_silver(batch, model, config).persist()
        gold.filter("is_alert").collect()
        gold.unpersist()

    micro_batch()
    in_process = [_timed(micro_batch) * 1e6 / micro_batch_rows for _ in range(repeats)]
    batch.unpersist()
    per_event_ms = statistics.median(per_event)
    in_process_us = statistics.median(in_process)
    return {
        "per_event_ms": round(per_event_ms, 2),
        "per_event_ms_spread": _summary(per_event),
        "batch100_ms_per_event": round(statistics.median(batch100), 3),
        "batch100_ms_per_event_spread": _summary(batch100),
        "in_process_us_per_event": round(in_process_us, 2),
        "in_process_us_per_event_spread": _summary(in_process),
        "micro_batch_rows": micro_batch_rows,
        "ratio_in_process_vs_per_event": round(per_event_ms * 1000 / in_process_us, 1),
        "ratio_in_process_vs_batch100": round(statistics.median(batch100) * 1000 / in_process_us, 1),
        "replaced_design_ms_per_event": {"per_event": 950, "batch100": 12},
    }
